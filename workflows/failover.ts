import {
  ApplicationFailure,
  CancellationScope,
  getExternalWorkflowHandle,
  isCancellation,
  ParentClosePolicy,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { DatapathActivities } from '../activities/datapath';
import type { DomainStatusActivities } from '../activities/domain-status';
import type { HandoverActivities, RecoveryPoint } from '../activities/handover';
import type { PrimarySiteActivities, RecoverySiteActivities } from '../activities/recovery-site';
import type { VmPowerActivities } from '../activities/vm-power';
import type { RunbookGroup } from '../runbooks/schema';
import { parseDuration } from '../runbooks/units';
import { workflowNow } from './clock';
import { Compensations } from './compensation';
import { failureMessage } from './failure-policy';
import { FAILOVER_ABORTED, failoverProgressQuery, type FailoverInput, type FailoverProgress, type FailoverReport, type FailoverStep, type FailoverVmState } from './failover-messages';
import { powerOnPlanProgressQuery } from './power-on-messages';
import { newPlanProgress, runPowerOnPlan, type PowerOnPlanInput } from './power-on-plan';
import { protect, stopProtectionSignal } from './protect';
import { recoveredVm, RecoveredVmError } from './recovered-vm';
import { DR_DOMAIN, DR_FAILOVER_TYPE, DR_OPERATION, DR_OUTCOME, DR_PRIMARY_SITE, DR_RECOVERY_SITE, DR_REQUESTED_BY, DR_SITE } from './search-attributes';
import { siteTaskQueue } from './task-queues';
import { forEachVm } from './vm-fan-out';
import { protectionWorkflowId } from './workflow-ids';

type SiteActivities = RecoverySiteActivities & PrimarySiteActivities & HandoverActivities & DatapathActivities & DomainStatusActivities & VmPowerActivities;

/** Failures that retrying cannot heal: the operation aborts (and compensates) at once. */
const CANNOT_HEAL = [
  'VmNotFound',
  'DiskNotFound',
  'NameConflict',
  'UnknownPlacement',
  'InvalidRequest',
  'StaleEpoch',
  'NotOwner',
  'CorruptSegment',
  'NoManifest',
  'UnknownRestorePoint',
  'OutsideProtectionWindow',
  'TargetNotRestorable',
  'GuestShutdownTimeout',
];

function activitiesAt(site: string, options: Partial<ActivityOptions> = {}) {
  return proxyActivities<SiteActivities>({
    taskQueue: siteTaskQueue(site),
    // Site calls are short; a worker that dies mid-call is noticed after this long, and the call retried.
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', nonRetryableErrorTypes: CANNOT_HEAL },
    ...options,
  });
}

/** Groups in the order the power-on plan starts them (each after every group it depends on). */
function powerOnOrder(groups: RunbookGroup[]): RunbookGroup[] {
  const ordered: RunbookGroup[] = [];
  const placed = new Set<string>();
  while (ordered.length < groups.length) {
    const ready = groups.filter((g) => !placed.has(g.name) && g.dependsOn.every((d) => placed.has(d)));
    for (const group of ready) {
      ordered.push(group);
      placed.add(group.name);
    }
  }
  return ordered;
}

/** Shutdown batches for a planned failover: VMs outside the plan first, then groups in reverse power-on order. */
function shutdownBatches(groups: RunbookGroup[], domainVms: string[]): string[][] {
  const planned = new Set(groups.flatMap((g) => g.vms.map((v) => v.name)));
  const batches = powerOnOrder(groups)
    .reverse()
    .map((g) => g.vms.map((v) => v.name).filter((vm) => domainVms.includes(vm)));
  return [domainVms.filter((vm) => !planned.has(vm)), ...batches].filter((batch) => batch.length > 0);
}

/**
 * Failover of a protected domain to its recovery site, planned (the primary shuts down, drains
 * and hands over) or forced (the primary is lost: the recovery site takes ownership, fencing it).
 * At the recovery site the domain is rebuilt through a RocVA and representation VMs, registered
 * with the runbook's placement and network settings, protected again and powered on by the
 * runbook's plan. Anything it created is undone if it aborts or is cancelled.
 */
export async function failover(input: FailoverInput): Promise<FailoverReport> {
  const { domain, runbook } = input;
  const { primary, recovery } = runbook.spec.sites;
  const { workflowId, runId } = workflowInfo();
  const startedAt = workflowNow();
  const progress: FailoverProgress = {
    domain,
    type: input.type,
    primarySite: primary,
    recoverySite: recovery,
    runbook: { name: runbook.metadata.name, version: input.runbookVersion },
    requestedBy: input.requestedBy,
    outcome: 'running',
    phase: 'starting',
    steps: [],
    vms: [],
    bytesRehydrated: 0,
    declaredAt: input.declaredAt,
    startedAt,
    elapsedMs: 0,
    rtoSoFarMs: 0,
  };
  const planInput: PowerOnPlanInput = {
    domain,
    site: recovery,
    powerOn: runbook.spec.powerOn,
    leavePoweredOff: runbook.spec.vms.filter((vm) => vm.startupAction === 'poweredOff').map((vm) => vm.name),
  };
  const plan = newPlanProgress(planInput);
  setHandler(failoverProgressQuery, () => ({ ...progress, elapsedMs: workflowNow() - startedAt, rtoSoFarMs: workflowNow() - input.declaredAt }));
  setHandler(powerOnPlanProgressQuery, () => plan);
  upsertSearchAttributes([
    { key: DR_DOMAIN, value: domain },
    { key: DR_OPERATION, value: 'failover' },
    { key: DR_PRIMARY_SITE, value: primary },
    { key: DR_RECOVERY_SITE, value: recovery },
    { key: DR_FAILOVER_TYPE, value: input.type },
    { key: DR_REQUESTED_BY, value: input.requestedBy },
    { key: DR_OUTCOME, value: 'running' },
  ]);
  upsertMemo({ runbook: `${runbook.metadata.name} v${input.runbookVersion}`, requestedBy: input.requestedBy, pointInTime: input.pointInTime ?? 'latest' });

  const atPrimary = activitiesAt(primary, { retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5, nonRetryableErrorTypes: CANNOT_HEAL } });
  const atRecovery = activitiesAt(recovery);
  const undo = new Compensations();
  const vmState = (name: string, state: FailoverVmState) => {
    const vm = progress.vms.find((v) => v.name === name);
    if (vm) vm.state = state;
    else progress.vms.push({ name, state });
  };
  const showPhase = () =>
    setCurrentDetails(
      `**${input.type} failover of ${domain}**: ${primary} → ${recovery} (runbook ${runbook.metadata.name} v${input.runbookVersion})\n\n` +
        `phase: **${progress.phase}** (${progress.steps.length} step(s) so far), ${progress.bytesRehydrated} bytes rehydrated`,
    );
  async function step<T>(name: string, run: () => Promise<T>): Promise<T> {
    const record: FailoverStep = { name, state: 'running', startedAt: workflowNow() };
    progress.steps.push(record);
    progress.phase = name;
    showPhase();
    try {
      const result = await run();
      record.state = 'done';
      return result;
    } catch (error) {
      record.state = 'failed';
      record.detail = failureMessage(error);
      throw error;
    } finally {
      record.endedAt = workflowNow();
      record.durationMs = record.endedAt - record.startedAt;
    }
  }
  const report = (extra: Partial<FailoverReport>): FailoverReport => {
    const { phase: _phase, elapsedMs: _elapsed, rtoSoFarMs: _rto, ...rest } = progress;
    return { ...rest, endedAt: workflowNow(), ...extra };
  };

  let rtoMs: number | undefined;
  let rpoMs: number | undefined;
  try {
    if (input.type === 'forced' && input.forcedConfirmation !== domain) {
      throw ApplicationFailure.nonRetryable(`a forced failover of ${domain} must be confirmed by repeating the domain name: it fences the primary site ${primary}`, 'ConfirmationRequired');
    }
    const owned = await step('check ownership', () => atRecovery.describeDomain.executeWithOptions({ summary: `read ${domain}'s ownership from the storage site` }, [{ domain }]));
    if (owned.ownerSite === recovery) throw ApplicationFailure.nonRetryable(`${domain} is already owned by ${recovery} (epoch ${owned.epoch}): it has failed over already`, 'AlreadyFailedOver');
    if (input.type === 'planned' && owned.ownerSite !== primary) {
      throw ApplicationFailure.nonRetryable(`a planned failover needs ${domain} owned by ${primary}, but ${owned.ownerSite ?? 'nobody'} owns it`, 'NotOwner');
    }
    for (const vm of owned.vms) vmState(vm, 'protected');
    const primaryProtection = getExternalWorkflowHandle(protectionWorkflowId(domain, primary, owned.epoch));

    if (input.type === 'planned') {
      const shutdownTimeoutMs = parseDuration(runbook.spec.primaryShutdown.timeout) ?? 300_000;
      const shutdown = activitiesAt(primary, { startToCloseTimeout: shutdownTimeoutMs + 30_000, retry: { maximumAttempts: 5, nonRetryableErrorTypes: CANNOT_HEAL } });
      // Pushed first, so that a shutdown that fails half-way still powers the stopped VMs on again.
      const stopped: string[] = [];
      undo.push(`the VMs shut down at ${primary} powered on again`, async () => {
        for (const vm of stopped) await atPrimary.powerOnVm.executeWithOptions({ summary: `power ${vm} on again at ${primary}` }, [{ vm }]);
      });
      await step('shut down VMs at the primary', async () => {
        let ordinal = 0;
        for (const batch of shutdownBatches(runbook.spec.powerOn.groups, owned.vms)) {
          await forEachVm(batch, async (vm) => {
            const n = ++ordinal;
            const { outcome } = await shutdown.shutdownForHandover.executeWithOptions({ summary: `shut down ${vm} at ${primary} (${n}/${owned.vms.length})` }, [
              { vm, timeoutMs: shutdownTimeoutMs, onTimeout: runbook.spec.primaryShutdown.onTimeout === 'powerOff' ? 'powerOff' : 'fail' },
            ]);
            if (outcome !== 'alreadyOff') stopped.push(vm);
            vmState(vm, 'shutDown');
          });
        }
      });
      const drained = await step('drain replication', () =>
        activitiesAt(primary, { startToCloseTimeout: '30 minutes', heartbeatTimeout: '10 seconds' }).drainReplication.executeWithOptions({ summary: `drain ${domain}'s journal at ${primary} into the log` }, [{ domain }]),
      );
      await primaryProtection.signal(stopProtectionSignal).catch(() => undefined);
      const handed = await step('hand over ownership', () =>
        atPrimary.releaseDomain.executeWithOptions({ summary: `hand ${domain} over to ${recovery} after segment ${drained.lastSegment ?? 'none'}` }, [
          { domain, epoch: drained.epoch, nextSite: recovery, lastSegment: drained.lastSegment },
        ]),
      );
      progress.epoch = handed.epoch;
      undo.push(`ownership of ${domain} returned to ${primary}, whose protection resumed`, async () => {
        const back = await atRecovery.releaseDomain.executeWithOptions({ summary: `return ${domain} to ${primary}` }, [{ domain, epoch: handed.epoch, nextSite: primary, lastSegment: null }]);
        // As a new owner: the manifest is recorded for the primary again (resuming at the recovery site rewrote it).
        await startChild(protect, {
          workflowId: protectionWorkflowId(domain, primary, back.epoch),
          args: [{ domain, site: primary, vms: owned.vms, ...protectionPolicy(), start: { epoch: back.epoch, cursor: drained.cursor } }],
          parentClosePolicy: ParentClosePolicy.ABANDON,
          staticSummary: `Protection of ${domain} at ${primary} (epoch ${back.epoch}), resumed after an aborted failover`,
          typedSearchAttributes: [
            { key: DR_DOMAIN, value: domain },
            { key: DR_OPERATION, value: 'protect' },
            { key: DR_SITE, value: primary },
          ],
        });
      });
    } else {
      const claimed = await step('take over ownership', () =>
        atRecovery.claimDomain.executeWithOptions({ summary: `take ${domain} over for ${recovery}, fencing ${primary}` }, [{ domain, site: recovery, takeover: true }]),
      );
      if (!claimed.won) throw ApplicationFailure.nonRetryable(`${claimed.ownerSite} claimed ${domain} first (epoch ${claimed.epoch})`, 'StaleEpoch');
      progress.epoch = claimed.epoch;
      undo.keep(`ownership of ${domain} stays with ${recovery} (epoch ${claimed.epoch}): ${primary} was fenced, and handing a domain back to a lost site is unsafe`);
      // Its replicator is fenced already; cancelling closes the workflow instead of retrying a dead site forever.
      await primaryProtection.cancel().catch(() => undefined);
    }
    const epoch = progress.epoch;
    const protection = protectionPolicy();

    const point: RecoveryPoint = await step('resolve the recovery point', () =>
      atRecovery.resolveRecoveryPoint.executeWithOptions({ summary: `resolve ${input.pointInTime ? 'the requested point in time' : 'the latest consistent point'} of ${domain}` }, [
        { domain, ...(input.pointInTime ? { pointInTime: input.pointInTime } : {}) },
      ]),
    );
    progress.recoveryPoint = { description: point.description, dataFrom: point.dataFrom, ...(point.lastJournalSequence !== undefined ? { lastJournalSequence: point.lastJournalSequence } : {}) };
    const targets = point.vms.map((meta) => {
      const disks = point.disks.filter((d) => d.vm === meta.name);
      try {
        return { name: meta.name, disks, recovered: recoveredVm(meta, disks.map((d) => d.diskId), runbook) };
      } catch (error) {
        if (error instanceof RecoveredVmError) throw ApplicationFailure.nonRetryable(error.message, 'RunbookMismatch');
        throw error;
      }
    });
    const placement = runbook.spec.placement;

    const rocva = { name: `rocva-${domain}-${runId.slice(0, 8)}`, placement, networks: runbook.spec.rocva.networks };
    await step('deploy the RocVA', () => atRecovery.deployRocva.executeWithOptions({ summary: `deploy RocVA ${rocva.name} at ${recovery}` }, [rocva]));
    undo.push(`RocVA ${rocva.name} removed`, () => atRecovery.destroyRocva.executeWithOptions({ summary: `remove RocVA ${rocva.name}` }, [{ name: rocva.name }]));

    await step('create representation VMs', () =>
      forEachVm(targets, async (t, i) => {
          undo.push(`${t.name} and its disks removed from ${recovery}`, () =>
            atRecovery.removeRecoveredVm.executeWithOptions({ summary: `remove ${t.name} from ${recovery}` }, [{ vm: t.name, diskIds: t.disks.map((d) => d.diskId) }]),
          );
          await atRecovery.prepareTargetDisks.executeWithOptions({ summary: `representation VM for ${t.name} (${i + 1}/${targets.length})` }, [
            { vm: t.name, placement, disks: t.disks.map((d) => ({ diskId: d.diskId, sizeBytes: d.sizeBytes })) },
          ]);
          vmState(t.name, 'rehydrating');
      }),
    );

    const rehydrated = await step('rehydrate disks', () =>
      activitiesAt(recovery, { startToCloseTimeout: '6 hours', heartbeatTimeout: '10 seconds' }).rehydrateDomain.executeWithOptions(
        { summary: `rehydrate ${point.disks.length} disk(s) of ${domain} at ${recovery} to ${point.description}` },
        [{ domain, targetSite: recovery, datastore: placement.datastore, upTo: point.upTo }],
      ),
    );
    progress.bytesRehydrated = rehydrated.bytesWritten;
    for (const t of targets) vmState(t.name, 'rehydrated');

    await step('remove representation VMs', () =>
      forEachVm(targets, async (t) => {
        await atRecovery.removeRepresentationVm.executeWithOptions({ summary: `remove representation VM of ${t.name}` }, [{ vm: t.name }]);
      }),
    );
    await step('register VMs', () =>
      forEachVm(targets, async (t, i) => {
        await atRecovery.registerRecoveredVm.executeWithOptions({ summary: `register ${t.name} at ${recovery} (${i + 1}/${targets.length})` }, [{ spec: t.recovered.spec }]);
        vmState(t.name, 'registered');
      }),
    );

    await step('resume protection', async () => {
      const { cursor } = await atRecovery.protectRecoveredDisks.executeWithOptions({ summary: `journal the recovered disks of ${domain}` }, [
        { diskIds: targets.flatMap((t) => t.disks.map((d) => d.diskId)) },
      ]);
      const vms = targets.map((t) => t.name);
      const id = protectionWorkflowId(domain, recovery, epoch);
      // The initial sync makes the recovered disks the new epoch's base, so a recovery to an
      // earlier point is never mixed with the old chain's later writes.
      await startChild(protect, {
        workflowId: id,
        args: [{ domain, site: recovery, vms, ...protection, start: { epoch, cursor }, initialSync: true }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        staticSummary: `Protection of ${domain} at ${recovery} (epoch ${epoch}), resumed by ${workflowId}`,
        typedSearchAttributes: [
          { key: DR_DOMAIN, value: domain },
          { key: DR_OPERATION, value: 'protect' },
          { key: DR_SITE, value: recovery },
        ],
      });
      undo.push(`protection at ${recovery} stopped`, () => getExternalWorkflowHandle(id).cancel());
    });

    const groups = await step('power on by the runbook', () => runPowerOnPlan(planInput, plan));
    for (const vm of groups.flatMap((g) => g.vms)) {
      vmState(vm.name, vm.state === 'leftPoweredOff' ? 'leftPoweredOff' : vm.state === 'failed' || vm.state === 'skipped' ? 'failed' : 'poweredOn');
    }
    rtoMs = workflowNow() - input.declaredAt;
    rpoMs = input.type === 'planned' && !input.pointInTime ? 0 : Math.max(0, input.declaredAt - point.dataFrom);

    await step('remove the RocVA', () => atRecovery.destroyRocva.executeWithOptions({ summary: `remove RocVA ${rocva.name}` }, [{ name: rocva.name }]));
    await step('set the domain mode', () =>
      atRecovery.setDomainStatus.executeWithOptions({ summary: `${domain}: Running in Failover at ${recovery}` }, [
        { domain, mode: 'Running in Failover', runningAt: recovery, vms: targets.map((t) => ({ name: t.name, protection: 'Recoverable' as const })), setBy: workflowId },
      ]),
    );
  } catch (error) {
    const cancelled = isCancellation(error) || CancellationScope.current().consideredCancelled;
    progress.outcome = cancelled ? 'cancelled' : 'aborted';
    progress.phase = `compensating after: ${failureMessage(error)}`;
    showPhase();
    const compensation = await undo.unwind();
    for (const vm of progress.vms) if (vm.state !== 'protected' && vm.state !== 'shutDown') vm.state = 'removed';
    upsertSearchAttributes([{ key: DR_OUTCOME, value: progress.outcome }]);
    if (cancelled) throw error;
    const final = report({ failure: failureMessage(error), compensation });
    throw ApplicationFailure.create({
      type: FAILOVER_ABORTED,
      nonRetryable: true,
      message: `failover of ${domain} aborted (${final.failure}); undone: ${compensation.undone.join('; ') || 'nothing'}; remains: ${compensation.remains.join('; ') || 'nothing'}`,
      details: [final],
    });
  }
  progress.outcome = 'succeeded';
  progress.phase = 'done';
  showPhase();
  upsertSearchAttributes([{ key: DR_OUTCOME, value: 'succeeded' }]);
  return report({ ...(rtoMs !== undefined ? { rtoMs } : {}), ...(rpoMs !== undefined ? { rpoMs } : {}) });

  function protectionPolicy() {
    return {
      protectionWindowMs: parseDuration(runbook.spec.protection.protectionWindow) ?? 7 * 86_400_000,
      restorePointIntervalMs: parseDuration(runbook.spec.protection.restorePointInterval) ?? 900_000,
    };
  }
}
