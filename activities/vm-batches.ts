import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { RegisterVmSpec } from '../sites/provider';
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

/** The per-VM site activities that rebuilding a domain fans out over its VMs (`Prepare`: what preparing one VM's disks takes). */
export interface PerVmRebuildActivities<Prepare extends { vm: string } = { vm: string }> {
  prepareTargetDisks(input: Prepare): Promise<unknown>;
  removeRepresentationVm(input: { vm: string }): Promise<void>;
  registerRecoveredVm(input: { spec: RegisterVmSpec }): Promise<void>;
  registerInPlaceOfRepresentation(input: { spec: RegisterVmSpec }): Promise<void>;
}

/** The same activities over batches of VMs (`{ vms: [...] }`, each item what the per-VM one takes). */
export function rebuildBatchActivities<Prepare extends { vm: string }>(perVm: PerVmRebuildActivities<Prepare>) {
  return {
    prepareTargetDisksOfBatch: inBatches((input: Prepare) => perVm.prepareTargetDisks(input), (input) => input.vm),
    removeRepresentationVmsOfBatch: inBatches((input: { vm: string }) => perVm.removeRepresentationVm(input), (input) => input.vm),
    registerRecoveredVmsOfBatch: inBatches((input: { spec: RegisterVmSpec }) => perVm.registerRecoveredVm(input), (input) => input.spec.name),
    registerInPlaceOfRepresentationsOfBatch: inBatches((input: { spec: RegisterVmSpec }) => perVm.registerInPlaceOfRepresentation(input), (input) => input.spec.name),
  };
}

export type RebuildBatchActivities = ReturnType<typeof rebuildBatchActivities<{ vm: string }>>;
