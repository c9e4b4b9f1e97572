/**
 * What the power-on plan asks of the recovery site's VMs. Implemented on top of the site provider
 * (sites/provider.ts) by createVmPowerActivities; the workflow sees only these signatures.
 */
export interface PowerOnVmInput {
  vm: string;
}

export interface WaitForGuestHeartbeatInput {
  vm: string;
  /** Epoch ms; absolute, so that a retried activity does not restart the runbook's timeout. */
  notAfter: number;
}

export interface VmPowerActivities {
  /** Idempotent: a VM that is already on counts as powered on (a retried activity finds it so). */
  powerOnVm(input: PowerOnVmInput): Promise<{ alreadyOn: boolean }>;
  /** Polls the guest heartbeat, heartbeating to Temporal, until it is seen or `notAfter` passes (non-retryable then). */
  waitForGuestHeartbeat(input: WaitForGuestHeartbeatInput): Promise<{ waitedMs: number }>;
}
