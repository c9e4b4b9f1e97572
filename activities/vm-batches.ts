import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { RegisterVmSpec } from '../sites/provider';
import type { DrillResource } from '../common/resource-names';
import type { CheckGuestInput, CheckGuestResult } from './vm-power';
import { forEachLimited } from '../common/parallel';

/**
 * Site calls of one batch made at once: with a workflow's VM_BATCHES_IN_FLIGHT batches, as many
 * calls in flight as its per-VM fan-out had (VM_STEPS_IN_FLIGHT).
 */
export const VMS_IN_FLIGHT_PER_BATCH = 10;

/** What a batch heartbeats: the VMs it has done, which a retry after a killed worker skips. */
export interface BatchProgress {
  done: string[];
}

/**
 * An activity over a batch of VMs from the activity for one VM: each VM done once per batch (a
 * retry resumes from the heartbeat, and each per-VM activity is idempotent by name anyway, for the
 * VM that was under way when the worker died), a heartbeat per VM done, a cancel stopping before
 * the next VM. A VM's failure fails the batch with its type and retryability, its message naming the VM.
 */
export function inBatches<I>(each: (input: I) => Promise<unknown>, vmOf: (input: I) => string) {
  return async ({ vms }: { vms: I[] }): Promise<void> => {
    const context = Context.current();
    const done = new Set((context.info.heartbeatDetails as BatchProgress | undefined)?.done ?? []);
    const todo = vms.filter((input) => !done.has(vmOf(input)));
    await forEachLimited(todo, VMS_IN_FLIGHT_PER_BATCH, async (input) => {
      if (context.cancellationSignal.aborted) throw new CancelledFailure('the batch was cancelled');
      const vm = vmOf(input);
      await each(input).catch((error: unknown) => {
        throw namingVm(vm, error);
      });
      done.add(vm);
      context.heartbeat({ done: [...done] } satisfies BatchProgress);
    });
  };
}

function namingVm(vm: string, error: unknown): unknown {
  if (error instanceof CancelledFailure) return error;
  if (error instanceof ApplicationFailure) return ApplicationFailure.create({ type: error.type ?? undefined, message: `${vm}: ${error.message}`, nonRetryable: error.nonRetryable ?? undefined, details: error.details ?? undefined, cause: error });
  return ApplicationFailure.create({ type: error instanceof Error ? error.name : 'Error', message: `${vm}: ${error instanceof Error ? error.message : String(error)}`, cause: error instanceof Error ? error : undefined });
}

/**
 * The per-VM site activities that rebuilding a domain fans out over its VMs (`Prepare`: what
 * preparing one VM's disks takes; `Remove`: what removing one takes).
 */
export interface PerVmRebuildActivities<Prepare extends { vm: string } = { vm: string }, Remove extends { vm: string } = { vm: string; diskIds?: string[] }> {
  prepareTargetDisks(input: Prepare): Promise<unknown>;
  removeRepresentationVm(input: { vm: string }): Promise<void>;
  registerRecoveredVm(input: { spec: RegisterVmSpec }): Promise<void>;
  registerInPlaceOfRepresentation(input: { spec: RegisterVmSpec }): Promise<void>;
  removeRecoveredVm(input: Remove): Promise<void>;
}

/** The same activities over batches of VMs (`{ vms: [...] }`, each item what the per-VM one takes). */
export function rebuildBatchActivities<Prepare extends { vm: string }, Remove extends { vm: string }>(perVm: PerVmRebuildActivities<Prepare, Remove>) {
  return {
    prepareTargetDisksOfBatch: inBatches((input: Prepare) => perVm.prepareTargetDisks(input), (input) => input.vm),
    removeRepresentationVmsOfBatch: inBatches((input: { vm: string }) => perVm.removeRepresentationVm(input), (input) => input.vm),
    registerRecoveredVmsOfBatch: inBatches((input: { spec: RegisterVmSpec }) => perVm.registerRecoveredVm(input), (input) => input.spec.name),
    registerInPlaceOfRepresentationsOfBatch: inBatches((input: { spec: RegisterVmSpec }) => perVm.registerInPlaceOfRepresentation(input), (input) => input.spec.name),
    removeRecoveredVmsOfBatch: inBatches((input: Remove) => perVm.removeRecoveredVm(input), (input) => input.vm),
  };
}

export type RebuildBatchActivities = ReturnType<typeof rebuildBatchActivities<{ vm: string }, { vm: string }>>;

/**
 * What a batch of a drill's removals did to each of its resources. Heartbeated as each is done:
 * a retry after a killed worker keeps them, so that what the batch removed is never reported as
 * gone already.
 */
export interface DrillRemovals {
  removed: DrillResource[];
  alreadyGone: DrillResource[];
  /** Forced only: what could not be removed, and why. */
  notRemoved: Array<DrillResource & { why: string }>;
}

/** Attempts at each removal of a forced cleanup, a second apart, before it is reported as not removed. */
const FORCED_REMOVAL_ATTEMPTS = 3;

/**
 * A batch of a drill's resources removed (`removeDrillResource` each), so that a drill's history
 * grows by one activity per batch, not per resource. Unforced, a removal that fails fails the
 * batch, which is retried from its heartbeat; forced, each removal gets FORCED_REMOVAL_ATTEMPTS
 * and what still fails is reported with why.
 */
export function drillRemovalBatchActivities(perResource: { removeDrillResource(resource: DrillResource): Promise<{ removed: boolean }> }) {
  return {
    removeDrillResourcesOfBatch: async ({ resources, force }: { resources: DrillResource[]; force: boolean }): Promise<DrillRemovals> => {
      const context = Context.current();
      const outcome: DrillRemovals = (context.info.heartbeatDetails as DrillRemovals | undefined) ?? { removed: [], alreadyGone: [], notRemoved: [] };
      const key = (r: DrillResource) => `${r.kind}:${r.name}`;
      const done = new Set([...outcome.removed, ...outcome.alreadyGone, ...outcome.notRemoved].map(key));
      await forEachLimited(resources.filter((r) => !done.has(key(r))), VMS_IN_FLIGHT_PER_BATCH, async ({ kind, name }) => {
        if (context.cancellationSignal.aborted) throw new CancelledFailure('the batch was cancelled');
        const resource = { kind, name };
        try {
          const { removed } = force ? await attempts(FORCED_REMOVAL_ATTEMPTS, () => perResource.removeDrillResource(resource)) : await perResource.removeDrillResource(resource);
          (removed ? outcome.removed : outcome.alreadyGone).push(resource);
        } catch (error) {
          if (!force) throw namingVm(name, error);
          outcome.notRemoved.push({ ...resource, why: error instanceof Error ? error.message : String(error) });
        }
        context.heartbeat(outcome);
      });
      return outcome;
    },
  };
}

export type DrillRemovalBatchActivities = ReturnType<typeof drillRemovalBatchActivities>;

/**
 * VM power changes over batches: a planned handover's shutdown at the site the domain leaves, and
 * the undo of a shutdown or a power-off, which powers the VMs on again (each idempotent per VM: a
 * VM already off or on is left so).
 */
export function vmPowerBatchActivities<Shutdown extends { vm: string }>(perVm: {
  shutdownForHandover(input: Shutdown): Promise<unknown>;
  powerOnVm(input: { vm: string }): Promise<unknown>;
}) {
  return {
    shutdownForHandoverOfBatch: inBatches((input: Shutdown) => perVm.shutdownForHandover(input), (input) => input.vm),
    powerOnVmsOfBatch: inBatches((input: { vm: string }) => perVm.powerOnVm(input), (input) => input.vm),
  };
}

/**
 * A drill's check of a batch of VMs: all of them at once, since each mostly waits for its guest
 * (the workflow runs one batch of a check at a time, as many probes as an activity per VM had in
 * flight). Read-only, so a retry simply checks again; a check that does not pass is a result.
 */
export function checkBatchActivities(perVm: { checkGuest(input: CheckGuestInput): Promise<CheckGuestResult> }) {
  return {
    checkGuestsOfBatch: ({ vms }: { vms: CheckGuestInput[] }): Promise<Array<CheckGuestResult & { vm: string }>> => Promise.all(vms.map(async (input) => ({ vm: input.vm, ...(await perVm.checkGuest(input)) }))),
  };
}

export type CheckBatchActivities = ReturnType<typeof checkBatchActivities>;

export type VmPowerBatchActivities<Shutdown extends { vm: string } = { vm: string }> = ReturnType<typeof vmPowerBatchActivities<Shutdown>>;

/** `call` tried up to `count` times, a second apart; a failure that cannot heal is not tried again. */
async function attempts<T>(count: number, call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= count || (error instanceof ApplicationFailure && error.nonRetryable)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
}
