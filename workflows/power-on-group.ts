import { setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';
import { PowerOnGroupRun, type PowerOnGroupInput, type PowerOnGroupResult } from './power-on-group-run';
import { approveUpdate, operatorDecisionUpdate, powerOnGroupProgressQuery, type ApprovalInput, type OperatorDecisionInput } from './power-on-messages';

/**
 * One power-on group of a runbook as a child workflow of its operation, so that the Web UI shows
 * the group as its own timeline; operators approve and decide through updates sent to it.
 */
export async function powerOnGroup(input: PowerOnGroupInput): Promise<PowerOnGroupResult> {
  const { batch, group, position } = input;
  const inBatch = batch ? `, batch ${batch.index} of ${batch.total}` : '';
  const run = new PowerOnGroupRun(input, workflowInfo().workflowId, (what) => setCurrentDetails(`**group ${group.name}** (${position.index}/${position.total}${inBatch}) — ${what}`));
  setHandler(powerOnGroupProgressQuery, () => run.snapshot());
  setHandler(
    approveUpdate,
    (decision) => {
      run.approve(decision);
      return { accepted: true };
    },
    { validator: (decision: ApprovalInput) => run.refuseApprovalUnlessWaiting(decision) },
  );
  setHandler(
    operatorDecisionUpdate,
    (decision) => {
      run.decide(decision);
      return { accepted: true };
    },
    { validator: (decision: OperatorDecisionInput) => run.refuseDecisionUnlessPaused(decision) },
  );
  return run.run();
}
