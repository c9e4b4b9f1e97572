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

export type VmPowerState = 'pending' | 'poweringOn' | 'delaying' | 'waitingForHeartbeat' | 'started' | 'leftPoweredOff' | 'failed' | 'skipped' | 'resumedByOperator';
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

export const approveUpdate = defineUpdate<{ accepted: true }, [ApprovalInput]>('approve');
export const operatorDecisionUpdate = defineUpdate<{ accepted: true }, [OperatorDecisionInput]>('operatorDecision');
export const powerOnGroupProgressQuery = defineQuery<PowerOnGroupProgress>('powerOnGroupProgress');
