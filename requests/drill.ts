import type { ObjectStore } from '../datapath/object-store';
import type { RunbookStore } from '../runbooks/store';
import { parseDuration } from '../runbooks/units';
import type { OperationRequest, SizedByRunbook } from '../workflows/domain-operations';
import type { DrillInput } from '../workflows/drill-messages';
import { loadDomainRunbook, requireAllowed, requireRecoverySite, RequestRefused, type RunbookRef } from './desk';

export interface DrillAsked {
  /** Default: the runbook named like the domain. */
  runbook?: string;
  version?: number;
  /** A duration (`30m`), already checked; default `0s`. */
  keepFor?: string;
  pointInTime?: DrillInput['pointInTime'];
  requestedBy: string;
}

/** The runbook a drill of the domain would run by, once it is known to have a recovery site and test networks. */
export async function drillableRunbook(runbooks: RunbookStore, domain: string, ref: RunbookRef) {
  const { runbook, version, recovery } = requireRecoverySite(domain, 'drill', await loadDomainRunbook(runbooks, domain, ref));
  if (!runbook.spec.testNetworkMapping) {
    throw new RequestRefused(409, `runbook ${runbook.metadata.name} v${version} has no spec.testNetworkMapping: ${domain} cannot be drilled without isolated test networks; submit a version with one (docs/drill.md)`, {
      runbook: { name: runbook.metadata.name, version },
    });
  }
  return { runbook, version, recovery };
}

/**
 * The desk's request for a drill of the domain, once the mode table allows one now and the runbook
 * can be drilled (it has a recovery site and test networks); refused with why otherwise. The same
 * for `POST /domains/{domain}/drill` and for a scheduled drill.
 */
export async function drillRequest(
  deps: { runbooks: RunbookStore; store: ObjectStore },
  domain: string,
  asked: DrillAsked,
): Promise<{ request: OperationRequest & SizedByRunbook; runbook: { name: string; version: number } }> {
  await requireAllowed(deps.store, domain, 'drill');
  const { runbook, version, recovery } = await drillableRunbook(deps.runbooks, domain, { runbook: asked.runbook ?? domain, ...(asked.version ? { version: asked.version } : {}) });
  const keepFor = asked.keepFor ?? '0s';
  const input: DrillInput = {
    domain,
    runbook: { name: runbook.metadata.name },
    runbookVersion: version,
    keepForMs: parseDuration(keepFor) ?? 0,
    requestedBy: asked.requestedBy,
    declaredAt: Date.now(),
    ...(asked.pointInTime ? { pointInTime: asked.pointInTime } : {}),
  };
  const summary = `Drill of ${domain} at ${recovery} on its test networks by runbook ${runbook.metadata.name} v${version}, kept ${keepFor} after its checks, requested by ${asked.requestedBy}`;
  return { request: { operation: 'drill', requestedBy: asked.requestedBy, summary, input, vms: runbook.spec.vms.length }, runbook: { name: runbook.metadata.name, version } };
}
