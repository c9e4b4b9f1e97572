import { defineQuery, defineUpdate } from '@temporalio/workflow';

/** Operator messages of a power-on group (the group's child workflow receives them). */
export interface ApprovalInput {
  step: string;
  /** The authenticated principal; the validator checks it against the step's approvers. */
  approver: string;
  decision: 'approve' | 'reject';
  comment?: string;
}

export type OperatorAction = 'resume' | 'retry' | 'skip' | 'abort';

export interface OperatorDecisionInput {
  /** What is paused: a VM name or a step name, as shown in the progress query. */
  target: string;
  action: OperatorAction;
  operator: string;
  comment?: string;
}

export type VmPowerState = 'pending' | 'poweringOn' | 'delaying' | 'waitingForHeartbeat' | 'poweredOn' | 'leftPoweredOff' | 'failed' | 'skipped' | 'resumedByOperator';
export type StepState = 'pending' | 'running' | 'waitingForApproval' | 'done' | 'failed' | 'skipped' | 'resumedByOperator';

export interface PausedOn {
  target: string;
  reason: string;
  since: number;
}

export interface PowerOnGroupProgress {
  group: string;
  workflowId: string;
  vms: Array<{ name: string; state: VmPowerState; startedAt?: number; error?: string }>;
  steps: Array<{ name: string; type: 'approval' | 'webhook'; state: StepState; error?: string; approvedBy?: string }>;
  waitingForApproval?: { step: string; approvers: string[]; since: number; message?: string };
  pausedOn: PausedOn[];
}

/** Validator failure types, so that callers can tell "not yours to approve" from "nothing to approve". */
export const NOT_AN_APPROVER = 'NotAnApprover';
export const NOT_WAITING = 'NotWaiting';

export interface PowerOnPlanProgress {
  /**
   * `workflowId`: the group's child, or for a group run in batches the batch under way (`batch`),
   * to which its approvals and decisions go; for a group the operation powers on itself (it needs
   * no operator), the operation, and `inOperation` is the group's progress.
   */
  groups: Array<{
    name: string;
    workflowId: string;
    dependsOn: string[];
    state: 'waiting' | 'running' | 'done' | 'failed';
    batch?: { index: number; total: number };
    inOperation?: PowerOnGroupProgress;
  }>;
}

export const approveUpdate = defineUpdate<{ accepted: true }, [ApprovalInput]>('approve');
export const operatorDecisionUpdate = defineUpdate<{ accepted: true }, [OperatorDecisionInput]>('operatorDecision');
export const powerOnGroupProgressQuery = defineQuery<PowerOnGroupProgress>('powerOnGroupProgress');
/** Answered by every operation that runs a power-on plan: which group child is where. */
export const powerOnPlanProgressQuery = defineQuery<PowerOnPlanProgress>('powerOnPlanProgress');
