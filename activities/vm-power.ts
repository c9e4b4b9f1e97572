import { ApplicationFailure, Context, heartbeat } from '@temporalio/activity';
import { DR_STATE, INACTIVE } from '../datapath/conflict';
import type { GuestProbe, GuestProbeResult, SiteProvider } from '../sites/provider';
import { atSite } from './site-failures';
import { failure } from '../common/failures';

/**
 * What the power-on plan asks of the recovery site's VMs, implemented on the site provider; the
 * workflow sees only these signatures.
 */
export interface PowerOnVmInput {
  vm: string;
}

export interface WaitForGuestHeartbeatInput {
  vm: string;
  /** Epoch ms; absolute, so that a retried activity does not restart the runbook's timeout. */
  notAfter: number;
}

/** A drill's check of one VM: its guest heartbeats, or a probe of one of its services answers (HTTP: with an expected status). */
export interface CheckGuestInput {
  vm: string;
  probe: { kind: 'heartbeat' } | GuestProbe;
  /** HTTP: the statuses that pass. */
  expectStatus?: number[];
  /** Epoch ms; absolute, so that a retried activity does not restart the check's timeout. */
  notAfter: number;
}

export interface CheckGuestResult {
  passed: boolean;
  /** The last answer, in words: why it passed, or why it had not by the deadline. */
  detail: string;
  waitedMs: number;
}

export interface VmPowerActivities {
  /**
   * Idempotent: a VM that is already on counts as powered on (a retried activity finds it so). A VM
   * deactivated after a split-brain is refused: it is a stale copy until reactivated.
   */
  powerOnVm(input: PowerOnVmInput): Promise<{ alreadyOn: boolean }>;
  /** Polls the guest heartbeat, heartbeating to Temporal, until it is seen or `notAfter` passes (non-retryable then). */
  waitForGuestHeartbeat(input: WaitForGuestHeartbeatInput): Promise<{ waitedMs: number }>;
  /** Probes until the check passes or `notAfter` passes; a check that does not pass is a result, not a failure. */
  checkGuest(input: CheckGuestInput): Promise<CheckGuestResult>;
}

export interface VmPowerDependencies {
  provider: SiteProvider;
  /** How often the guest heartbeat is polled. */
  heartbeatPollMs?: number;
}

export function createVmPowerActivities({ provider, heartbeatPollMs = 500 }: VmPowerDependencies): VmPowerActivities {
  return {
    async powerOnVm({ vm }) {
      try {
        const { alreadyOn } = await atSite(() => provider.powerOn(vm, { unlessMetadata: { [DR_STATE]: INACTIVE } }));
        return { alreadyOn };
      } catch (error) {
        if (!(error instanceof ApplicationFailure && error.type === 'PowerOnRefused')) throw error;
        // Only on a refusal: which operation deactivated it, for the operator.
        const held = await atSite(() => provider.getVm(vm));
        throw failure('VmInactive', `${vm} at site ${provider.site} was deactivated after a split-brain (${held.metadata.drInactiveBy ?? 'unknown operation'}); reactivate it before powering it on`);
      }
    },

    async waitForGuestHeartbeat({ vm, notAfter }) {
      const started = Date.now();
      for (;;) {
        heartbeat({ vm, waitedMs: Date.now() - started });
        if ((await atSite(() => provider.guestHeartbeat(vm))) === 'green') return { waitedMs: Date.now() - started };
        if (Date.now() >= notAfter) {
          throw failure('HeartbeatTimeout', `the guest of ${vm} did not heartbeat before ${new Date(notAfter).toISOString()}`);
        }
        // Context.sleep ends early when the activity is cancelled, so a cancelled operation stops polling.
        await Context.current().sleep(heartbeatPollMs);
      }
    },

    async checkGuest({ vm, probe, expectStatus = [200], notAfter }) {
      const started = Date.now();
      const once = async (): Promise<GuestProbeResult> => {
        if (probe.kind !== 'heartbeat') return atSite(() => provider.probeGuest(vm, probe));
        const beat = await atSite(() => provider.guestHeartbeat(vm));
        return { answered: beat === 'green', detail: `guest heartbeat ${beat}` };
      };
      for (;;) {
        const answer = await once();
        const passed = answer.answered && (probe.kind !== 'http' || expectStatus.includes(answer.status ?? 0));
        const detail = probe.kind === 'http' && answer.answered && !passed ? `${answer.detail}, expected ${expectStatus.join(' or ')}` : answer.detail;
        heartbeat({ vm, waitedMs: Date.now() - started, detail });
        if (passed || Date.now() >= notAfter) return { passed, detail, waitedMs: Date.now() - started };
        await Context.current().sleep(heartbeatPollMs);
      }
    },
  };
}
