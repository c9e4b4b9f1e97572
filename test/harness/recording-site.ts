import { ApplicationFailure } from '@temporalio/activity';
import type { VmPowerActivities } from '../../activities/vm-power';

export interface PowerOnRecord {
  vm: string;
  at: number;
}

/**
 * The VM power side of a site, reduced to a recorder, for tests of workflow orchestration
 * (order, parallelism, decisions). Tests of real sites use the simulated site service.
 */
export function recordingSite(powerOnMs = 150) {
  const poweredOn: PowerOnRecord[] = [];
  let running = 0;
  let maxConcurrent = 0;
  const failuresLeft = new Map<string, number>();
  // A drill's checks are not part of the power-on plan these tests run.
  const activities: Omit<VmPowerActivities, 'checkGuest'> = {
    async powerOnVm({ vm }) {
      running++;
      maxConcurrent = Math.max(maxConcurrent, running);
      try {
        await new Promise((r) => setTimeout(r, powerOnMs));
        const left = failuresLeft.get(vm) ?? 0;
        if (left > 0) {
          failuresLeft.set(vm, left - 1);
          throw ApplicationFailure.nonRetryable(`${vm} has no host with enough memory`, 'InsufficientResources');
        }
        const alreadyOn = poweredOn.some((p) => p.vm === vm);
        if (!alreadyOn) poweredOn.push({ vm, at: Date.now() });
        return { alreadyOn };
      } finally {
        running--;
      }
    },
    waitForGuestHeartbeat() {
      return Promise.resolve({ waitedMs: 0 });
    },
  };
  return { activities, poweredOn, failuresLeft, maxConcurrent: () => maxConcurrent };
}

/**
 * A runbook of domain `demo` from primary to recovery, on made-up placement names (the recording
 * site checks none): `vms` are YAML flow mappings, `powerOn` the lines under `powerOn:`.
 */
export function recordingSiteRunbook(name: string, vms: string[], powerOn: string): string {
  return `apiVersion: dr.example.io/v1alpha1
kind: Runbook
metadata: { name: ${name} }
spec:
  protectedDomain: demo
  sites: { primary: primary, recovery: recovery }
  placement: { datacenter: dc, cluster: c1, datastore: ds1 }
  vms: [${vms.join(', ')}]
  rocva: { networks: { externalReplication: n1, internal: n2, management: n3 } }
  powerOn:
${powerOn}`;
}
