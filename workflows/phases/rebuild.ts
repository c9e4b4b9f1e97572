import { patched } from '@temporalio/workflow';
import type { PointInTime, RecoveryPoint } from '../../activities/handover';
import type { ExistingAtSite } from '../../activities/recovery-site';
import type { DomainDisk } from '../../datapath/records';
import type { Placement, RocvaSpec } from '../../sites/provider';
import { representationVmName } from '../../common/resource-names';
import { failure } from '../../common/failures';
import type { Operation } from '../operation';
import { recoveredVm, RecoveredVmError, recoverySide, type RecoveredVm } from '../recovered-vm';
import { forEachBatch, forEachVm } from '../vm-fan-out';
import { activitiesAt, batchActivitiesAt, longActivitiesAt } from './site-activities';
import { someNames } from '../listing';

/** A VM being rebuilt: its disks in the log, and how it is registered at the site it moves to. */
export interface RebuildTarget {
  name: string;
  disks: DomainDisk[];
  recovered: RecoveredVm;
}

/**
 * Resolves the point the domain is rebuilt from (a restore point, an instant, or the latest
 * consistent point), after ownership has moved so that the chain is sealed, and applies the
 * runbook to the VM configuration recorded at that point (`configure`: a failback keeps the original one).
 */
export async function resolveRecoveryPoint(op: Operation, pointInTime?: PointInTime, configure: typeof recoveredVm = recoveredVm): Promise<{ point: RecoveryPoint; targets: RebuildTarget[] }> {
  const inPages = patched('recovery-point-vms-in-pages');
  const point = await op.step('resolve the recovery point', async () => {
    const resolved = await activitiesAt(op.to).resolveRecoveryPoint.executeWithOptions({ summary: `resolve ${pointInTime ? 'the requested point in time' : 'the latest consistent point'} of ${op.domain}` }, [
      { domain: op.domain, ...(pointInTime ? { pointInTime } : {}), ...(inPages ? { vmsInPages: true } : {}) },
    ]);
    return inPages ? { ...resolved, ...(await readRecoveryPointVms(op, resolved.vmCount ?? 0, pointInTime)) } : resolved;
  });
  op.recoveringTo({ description: point.description, dataFrom: point.dataFrom, ...(point.lastJournalSequence !== undefined ? { lastJournalSequence: point.lastJournalSequence } : {}) });
  const disksOf = disksPerVm(point.disks);
  const targets = point.vms.map((meta) => {
    const disks = disksOf.get(meta.name) ?? [];
    return { name: meta.name, disks, recovered: byRunbook(() => configure(meta, disks.map((d) => d.diskId), op.runbook)) };
  });
  return { point, targets };
}

/** A domain's disks by the VM they belong to, each VM's in the order given: one pass, for domains of 20,000 VMs. */
export function disksPerVm(disks: DomainDisk[]): Map<string, DomainDisk[]> {
  const perVm = new Map<string, DomainDisk[]>();
  for (const d of disks) {
    const ofVm = perVm.get(d.vm);
    if (ofVm) ofVm.push(d);
    else perVm.set(d.vm, [d]);
  }
  return perVm;
}

/** VMs of a recovery point per read: some 400 bytes of configuration and disks each, under Temporal's 2 MB per payload. */
export const RECOVERY_POINT_VMS_PER_PAGE = 2_000;

/** The VMs and disks of the point resolved, page by page. */
async function readRecoveryPointVms(op: Operation, vmCount: number, pointInTime?: PointInTime): Promise<Pick<RecoveryPoint, 'vms' | 'disks'>> {
  const read: Pick<RecoveryPoint, 'vms' | 'disks'> = { vms: [], disks: [] };
  for (let from = 0; from < vmCount; from += RECOVERY_POINT_VMS_PER_PAGE) {
    const page = await activitiesAt(op.to).readRecoveryPointVms.executeWithOptions({ summary: `read VMs ${from + 1}–${Math.min(from + RECOVERY_POINT_VMS_PER_PAGE, vmCount)} of ${vmCount} of the recovery point of ${op.domain}` }, [
      { domain: op.domain, ...(pointInTime ? { pointInTime } : {}), from, count: RECOVERY_POINT_VMS_PER_PAGE },
    ]);
    read.vms.push(...page.vms);
    read.disks.push(...page.disks);
  }
  return read;
}

/** Works out a VM's configuration from the runbook; what the runbook cannot give fails the operation as a RunbookMismatch, naming it. */
export function byRunbook<T>(configure: () => T): T {
  try {
    return configure();
  } catch (error) {
    if (error instanceof RecoveredVmError) throw failure('RunbookMismatch', error.message);
    throw error;
  }
}

/** The name of an operation's RocVA: after the domain and the operation's run. */
export const rocvaName = (op: Operation, runId: string) => `rocva-${op.domain}-${runIdSuffix(runId)}`;

/** The RocVA, the temporary appliance that rehydrates at the site (`name`: e.g. `rocvaName`). Undo: removed. */
export async function deployRocva(op: Operation, name: string, where?: Pick<RocvaSpec, 'placement' | 'networks'>): Promise<{ name: string }> {
  const rocva = { name, ...(where ?? rocvaAtRecoverySite(op)) };
  await op.step('deploy the RocVA', () => activitiesAt(op.to).deployRocva.executeWithOptions({ summary: `deploy RocVA ${rocva.name} at ${op.to}` }, [rocva]));
  undoRocva(op, rocva);
  return { name: rocva.name };
}

/** The RocVA at the runbook's recovery site: its placement and networks there. */
function rocvaAtRecoverySite(op: Operation): Pick<RocvaSpec, 'placement' | 'networks'> {
  const { placement, rocva } = byRunbook(() => recoverySide(op.runbook));
  return { placement, networks: rocva.networks };
}

/**
 * Eight hex digits of the run id that tell runs apart: its last ones. Run ids are UUIDv7, whose
 * first digits are the start time's, the same for runs started within about a minute (an
 * operation retried at once). Runs named before this change keep their names on replay.
 */
function runIdSuffix(runId: string): string {
  return patched('rocva-named-by-random-digits') ? runId.replace(/-/g, '').slice(-8) : runId.slice(0, 8);
}

/** The undo of a deployed RocVA; a run continued as new pushes it again for the RocVA it carries. */
export function undoRocva(op: Operation, rocva: { name: string }): void {
  op.undo.push(`RocVA ${rocva.name} removed`, () => activitiesAt(op.to).destroyRocva.executeWithOptions({ summary: `remove RocVA ${rocva.name}` }, [{ name: rocva.name }]));
}

export async function removeRocva(op: Operation, rocva: { name: string }): Promise<void> {
  await op.step('remove the RocVA', () => activitiesAt(op.to).destroyRocva.executeWithOptions({ summary: `remove RocVA ${rocva.name}` }, [{ name: rocva.name }]));
}

/** A VM's target disks at the site the domain moves to, and where they go. */
export interface TargetVm {
  name: string;
  disks: DomainDisk[];
  placement: Placement;
}

/** A rebuilt VM's target disks under the names it is registered with (a drill's copy has names of its own). */
export const targetVmOf = (t: RebuildTarget): TargetVm => ({
  name: t.recovered.spec.name,
  disks: t.disks.map((d, i) => ({ ...d, vm: t.recovered.spec.name, diskId: t.recovered.spec.diskIds[i] ?? d.diskId })),
  placement: t.recovered.spec.placement,
});

/**
 * Target disks behind a representation VM per VM, on the datastore the runbook gives that VM.
 * Preparing a VM again matches its disks to `disks` (a disk added at the primary is created and
 * attached). What the site held of the VM's names before is asked first and never undone. Undo
 * (pushed before anything is created): the VM, its representation VM and the disks this
 * operation created removed. Returns what was there before (none in histories from before it was asked).
 * `vmOf`: the domain's name of a target VM, under which the operation's progress shows it (a drill's
 * targets have names of their own).
 */
export async function prepareTargetDisks(op: Operation, targets: TargetVm[], stepName = 'create representation VMs', vmOf: (target: string) => string = (target) => target): Promise<FoundPerVm> {
  const atTo = activitiesAt(op.to);
  const keepsWhatItFound = patched('operations-keep-what-they-found');
  const inBatches = rebuildsInBatches();
  const prepareInput = (t: TargetVm) => ({ vm: t.name, placement: t.placement, disks: t.disks.map((d) => ({ diskId: d.diskId, sizeBytes: d.sizeBytes })) });
  return op.step(stepName, async () => {
    // One look before anything is created: a cancel during it leaves nothing to undo.
    const found = keepsWhatItFound ? await findExisting(op, targets) : undefined;
    const foundPerVm: FoundPerVm = found ? existingPerVm(found, targets) : {};
    if (inBatches) {
      const undoesByBatch = patched('undo-rebuild-in-batches');
      await forEachBatch(targets, async (batch, range) => {
        if (undoesByBatch) undoTargets(op, batch, foundPerVm, range);
        else for (const t of batch) undoTarget(op, t, foundPerVm[t.name]);
        await batchActivitiesAt(op.to).prepareTargetDisksOfBatch.executeWithOptions({ summary: `create representation VMs ${range} at ${op.to}` }, [{ vms: batch.map(prepareInput) }]);
        for (const t of batch) op.vm(vmOf(t.name), 'rehydrating');
      });
      return foundPerVm;
    }
    await forEachVm(targets, async (t, i) => {
      undoTarget(op, t, foundPerVm[t.name]);
      await atTo.prepareTargetDisks.executeWithOptions({ summary: `representation VM for ${t.name} (${i + 1}/${targets.length})` }, [prepareInput(t)]);
      op.vm(vmOf(t.name), 'rehydrating');
    });
    return foundPerVm;
  });
}

/**
 * Whether the per-VM steps of rebuilding run as batch activities (VMS_PER_BATCH VMs each) or as an
 * activity per VM, as histories from before batching were recorded.
 */
const rebuildsInBatches = () => patched('rebuild-in-batches');

/** Per VM name, what the site held of it before the operation prepared it: its undo leaves that. */
export type FoundPerVm = Record<string, ExistingAtSite>;

/** What the site the domain moves to holds already of the VMs' names: the VMs, their representation VMs, their disks. */
function findExisting(op: Operation, targets: Array<Pick<TargetVm, 'name' | 'disks'>>): Promise<ExistingAtSite> {
  return activitiesAt(op.to).findExisting.executeWithOptions({ summary: `what ${op.to} holds already of ${targets.length} VM(s)` }, [
    { vms: targets.map((t) => t.name), diskIds: targets.flatMap((t) => t.disks.map((d) => d.diskId)) },
  ]);
}

/**
 * What was found, per VM: it, its representation VM, its disks, each in the order the site listed
 * them. One pass over what was found: a failback finds every one of 10,000 original VMs and disks.
 */
function existingPerVm(found: ExistingAtSite, targets: Array<Pick<TargetVm, 'name' | 'disks'>>): FoundPerVm {
  const perVm: FoundPerVm = {};
  const vmOf = new Map<string, string>();
  const vmOfDisk = new Map<string, string>();
  for (const t of targets) {
    perVm[t.name] = { vms: [], diskIds: [] };
    vmOf.set(t.name, t.name);
    vmOf.set(representationVmName(t.name), t.name);
    for (const d of t.disks) vmOfDisk.set(d.diskId, t.name);
  }
  for (const v of found.vms) {
    const owner = vmOf.get(v.name);
    if (owner) perVm[owner].vms.push(v);
  }
  for (const id of found.diskIds) {
    const owner = vmOfDisk.get(id);
    if (owner) perVm[owner].diskIds.push(id);
  }
  return perVm;
}

/**
 * The undo of a prepared target VM; a run continued as new pushes it again for each VM it carries.
 * `found`: what was there before the operation, which the undo leaves.
 */
export function undoTarget(op: Operation, t: Pick<TargetVm, 'name' | 'disks'>, found?: ExistingAtSite): void {
  op.undo.push(`${t.name} and its disks removed from ${op.to}${found ? keptBefore([found]) : ''}`, () =>
    activitiesAt(op.to).removeRecoveredVm.executeWithOptions({ summary: `remove ${t.name} from ${op.to}` }, [{ vm: t.name, diskIds: t.disks.map((d) => d.diskId), ...(found ? { found } : {}) }]),
  );
}

/** What was there before, said in an undo's description: the first few names, and how many more. */
function keptBefore(found: ExistingAtSite[]): string {
  const names = found.flatMap((f) => [...f.vms.map((v) => v.name), ...f.diskIds]);
  return names.length > 0 ? ` (kept what was there before: ${someNames(names, 10)})` : '';
}

/**
 * The undo of a batch of prepared target VMs, as one batch activity: an aborted 10,000-VM
 * operation's compensation adds 100 activities to its history, not 10,000, and its report 100 lines.
 */
function undoTargets(op: Operation, batch: TargetVm[], foundPerVm: FoundPerVm, range: string): void {
  const names = batch.length > 1 ? `${batch[0].name} … ${batch[batch.length - 1].name}` : batch[0].name;
  op.undo.push(`VMs ${range} (${names}) and their disks removed from ${op.to}${keptBefore(batch.map((t) => foundPerVm[t.name] ?? { vms: [], diskIds: [] }))}`, () =>
    batchActivitiesAt(op.to).removeRecoveredVmsOfBatch.executeWithOptions({ summary: `remove VMs ${range} from ${op.to}` }, [
      {
        vms: batch.map((t) => {
          const found = foundPerVm[t.name];
          return { vm: t.name, diskIds: t.disks.map((d) => d.diskId), ...(found ? { found } : {}) };
        }),
      },
    ]),
  );
}

/**
 * Rebuilds every target disk from the log up to the point, as one resumable, heartbeating activity
 * at the site; returns the bytes written. `onto: 'new disks'`: the disks `prepareTargetDisks`
 * created behind representation VMs, which the rehydration does not create again. `'existing
 * disks'` (a failback's full rehydration onto the original disks): the targets may hold stale
 * data, so zeros are written where the log has zeros. `'in place'` (a restore): the same, for the
 * targets' own disks only, the domain's other disks untouched.
 * `diskIdPrefix`: the target disks are named this prefix + the domain's disk id (a drill's copies).
 */
export async function rehydrate(op: Operation, point: RecoveryPoint, targets: RebuildTarget[], onto: 'new disks' | 'existing disks' | 'in place' = 'new disks', diskIdPrefix?: string): Promise<number> {
  const diskDatastores = Object.fromEntries(targets.flatMap((t) => t.disks.map((d) => [d.diskId, t.recovered.spec.placement.datastore])));
  const stepName = { 'new disks': 'rehydrate disks', 'existing disks': 'rehydrate the original disks fully', 'in place': `rehydrate the disks of ${targets.length} VM(s) in place` }[onto];
  const rehydrated = await op.step(stepName, () =>
    longActivitiesAt(op.to, '6 hours').rehydrateDomain.executeWithOptions({ summary: `rehydrate ${point.disks.length} disk(s) of ${op.domain} at ${op.to} to ${point.description}` }, [
      {
        domain: op.domain,
        targetSite: op.to,
        // In place every disk is a target's own, on its VM's datastore: the runbook's recovery side is not needed.
        datastore: onto === 'in place' ? (Object.values(diskDatastores)[0] ?? '') : byRunbook(() => recoverySide(op.runbook)).placement.datastore,
        diskDatastores,
        upTo: point.upTo,
        ...(onto === 'new disks' ? { targetDisksPrepared: true } : { targetMayHoldData: true }),
        ...(onto === 'in place' ? { onlyDisks: Object.keys(diskDatastores) } : {}),
        ...(diskIdPrefix ? { diskIdPrefix } : {}),
      },
    ]),
  );
  op.rehydrated(rehydrated.bytesWritten);
  for (const t of targets) op.vm(t.name, 'rehydrated');
  return rehydrated.bytesWritten;
}

export async function removeRepresentationVms(op: Operation, targets: RebuildTarget[]): Promise<void> {
  const inBatches = rebuildsInBatches();
  await op.step('remove representation VMs', () =>
    inBatches
      ? forEachBatch(targets, async (batch, range) => {
          await batchActivitiesAt(op.to).removeRepresentationVmsOfBatch.executeWithOptions({ summary: `remove representation VMs ${range} at ${op.to}` }, [{ vms: batch.map((t) => ({ vm: t.recovered.spec.name })) }]);
        })
      : forEachVm(targets, async (t) => {
          await activitiesAt(op.to).removeRepresentationVm.executeWithOptions({ summary: `remove representation VM of ${t.recovered.spec.name}` }, [{ vm: t.recovered.spec.name }]);
        }),
  );
}

/**
 * The representation VMs give way to the VMs, one call per VM (registered as `registerVms` does):
 * for a completion, whose RTO counts every round trip.
 */
export async function registerInPlaceOfRepresentations(op: Operation, targets: RebuildTarget[]): Promise<void> {
  const inBatches = rebuildsInBatches();
  await op.step('register VMs in place of their representation VMs', () =>
    inBatches
      ? forEachBatch(targets, async (batch, range) => {
          await batchActivitiesAt(op.to).registerInPlaceOfRepresentationsOfBatch.executeWithOptions({ summary: `register VMs ${range} in place of their representation VMs at ${op.to}` }, [{ vms: batch.map(registration) }]);
          for (const t of batch) op.vm(t.name, 'registered');
        })
      : forEachVm(targets, async (t, i) => {
          await activitiesAt(op.to).registerInPlaceOfRepresentation.executeWithOptions({ summary: `register ${t.name} at ${op.to} (${i + 1}/${targets.length})` }, [registration(t)]);
          op.vm(t.name, 'registered');
        }),
  );
}

/** Registers each VM with the runbook's placement, networks, re-IP and overrides applied. */
export async function registerVms(op: Operation, targets: RebuildTarget[]): Promise<void> {
  const inBatches = rebuildsInBatches();
  await op.step('register VMs', () =>
    inBatches
      ? forEachBatch(targets, async (batch, range) => {
          await batchActivitiesAt(op.to).registerRecoveredVmsOfBatch.executeWithOptions({ summary: `register VMs ${range} at ${op.to}` }, [{ vms: batch.map(registration) }]);
          for (const t of batch) op.vm(t.name, 'registered');
        })
      : forEachVm(targets, async (t, i) => {
          await activitiesAt(op.to).registerRecoveredVm.executeWithOptions({ summary: `register ${t.name} at ${op.to} (${i + 1}/${targets.length})` }, [registration(t)]);
          op.vm(t.name, 'registered');
        }),
  );
}

const registration = (t: RebuildTarget) => ({ spec: t.recovered.spec });
