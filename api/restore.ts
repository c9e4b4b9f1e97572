import express, { type Router } from 'express';
import { z } from 'zod';
import { readDomainStatus } from '../datapath/domain-status';
import { protectionWorkflowId } from '../workflows/workflow-ids';
import { protectionStatus, restorePointRefusal } from './domain-protection';
import { DomainKeys } from '../datapath/keys';
import { Ownership } from '../datapath/ownership';
import { manifestSchema, parseRecord, restorePointSchema, type Manifest } from '../datapath/records';
import type { RestoreInput } from '../workflows/restore-messages';
import { principalName, requireRole } from './auth';
import { DOMAIN, domainParam, operationDesk, PROTECTION_DEADLINE_MS, pointInTimeOf, PointInTimeRequest, RunbookRef, startsOperation, type OperationsRouterOptions } from './operations';
import { badRequest, conflict, parseBody } from './problem';
import { routeDocs } from './openapi/route-docs';
import { someNames } from '../workflows/listing';

const RestoreRequest = RunbookRef.extend({
  runbook: RunbookRef.shape.runbook.optional().describe('default: the runbook named like the domain'),
  pointInTime: PointInTimeRequest.describe('a restore point id or an instant inside the protection window'),
  vms: z.array(z.string().min(1).max(80)).min(1).max(1000).optional().describe('only these VMs; default: every VM of the point'),
  confirm: z.string().max(63).describe('the domain name, confirming that the VMs\' disks are overwritten'),
  site: z.string().regex(DOMAIN, 'must be a site name').optional().describe('the site that owns the domain; default: whichever does'),
});

/**
 * `POST /domains/{domain}/restore`: the domain, or chosen VMs of it, reverted in place at the site
 * that owns it to a restore point or an instant of its protection window (docs/restore.md). Bad
 * input is a 400 naming the field; a mode that does not allow it, or a site that does not own the
 * domain, a 409.
 */
export function restoreRouter(options: Pick<OperationsRouterOptions, 'client' | 'runbooks' | 'store' | 'log' | 'webUiUrl'>): Router {
  const { store } = options;
  const router = express.Router();
  const json = express.json({ limit: '64kb' });
  const { loadRunbook, requireAllowed, startAndAnswer } = operationDesk(options);

  routeDocs(router).post('/domains/:domain/restore', startsOperation('Revert the domain, or chosen VMs of it, in place to a restore point or an instant (docs/restore.md)', RestoreRequest));
  router.post('/domains/:domain/restore', requireRole('operator'), json, async (req, res) => {
    const domain = domainParam(req);
    const body = parseBody(RestoreRequest, req);
    if (body.confirm !== domain) throw badRequest(`confirm: a restore overwrites the disks of ${domain}'s VMs; confirm by sending "confirm": "${domain}"`, { errors: [{ path: 'confirm', message: `must be "${domain}"` }] });
    await requireAllowed(domain, 'restore');
    const { site, epoch } = await owningSite(domain, body.site);
    const manifest = await readManifest(domain);
    const members = new Set(manifest.vms.map((v) => v.name));
    const unknown = (body.vms ?? []).filter((vm) => !members.has(vm));
    if (unknown.length > 0) throw badRequest(`vms: ${someNames(unknown)} not in ${domain}`, { errors: [{ path: 'vms', message: `unknown VM(s): ${someNames(unknown)}; ${domain} has ${someNames([...members])}` }] });
    const pointInTime = pointInTimeOf(body.pointInTime);
    await checkPoint(domain, manifest, pointInTime, body.vms);
    await requireRestorePointNow(domain, site, epoch, manifest.disks.length);
    const { runbook, version } = await loadRunbook(domain, { runbook: body.runbook ?? domain, ...(body.version ? { version: body.version } : {}) });

    const input: RestoreInput = { domain, site, runbook: { name: runbook.metadata.name }, runbookVersion: version, pointInTime, ...(body.vms ? { vms: body.vms } : {}), confirm: body.confirm, requestedBy: principalName(req), declaredAt: Date.now() };
    const point = 'restorePoint' in pointInTime ? `restore point ${pointInTime.restorePoint}` : new Date(pointInTime.at).toISOString();
    const summary = `Restore of ${body.vms ? someNames(body.vms) : domain} at ${site} to ${point} by runbook ${runbook.metadata.name} v${version}, requested by ${principalName(req)}`;
    await startAndAnswer(res, domain, { operation: 'restore', requestedBy: principalName(req), summary, input, vms: runbook.spec.vms.length }, { site, pointInTime: body.pointInTime, vms: body.vms ?? 'all', runbook: { name: runbook.metadata.name, version } });
  });

  /** The site that owns the domain, which must be the one the domain's status says it runs at (and the one asked for), and its epoch. */
  async function owningSite(domain: string, asked: string | undefined): Promise<{ site: string; epoch: number }> {
    const [{ epoch, owner }, status] = await Promise.all([new Ownership(store, domain).inspect(), readDomainStatus(store, domain)]);
    if (!owner) throw conflict(`${domain} is owned by no site: it was never protected`);
    if (status?.runningAt !== undefined && status.runningAt !== owner.site) {
      throw conflict(`${domain} runs at ${status.runningAt} but ${owner.site} owns it (epoch ${epoch}): a restore runs only at the site that owns the domain`, { owner: owner.site, runningAt: status.runningAt });
    }
    if (asked !== undefined && asked !== owner.site) throw conflict(`a restore runs at the site that owns ${domain}, and that is ${owner.site} (epoch ${epoch}), not ${asked}`, { owner: owner.site });
    return { site: owner.site, epoch };
  }

  /**
   * A restore first keeps the VMs' state as a restore point, which the running protection takes
   * only while it logs every write: refused at once when it cannot, rather than the operation
   * retrying for minutes behind an initial sync of thousands of disks. A protection that does not
   * answer is left to the operation, which says why it cannot go on.
   */
  async function requireRestorePointNow(domain: string, site: string, epoch: number, disks: number): Promise<void> {
    const workflowId = protectionWorkflowId(domain, site, epoch);
    const protection = await protectionStatus(options.client, PROTECTION_DEADLINE_MS, workflowId, []);
    const refusal = protection && restorePointRefusal(protection, disks);
    if (protection && refusal) {
      throw conflict(`${domain}: a restore first keeps the VMs' current state as a restore point, and ${refusal}; try again then (GET /domains/${domain} shows its mode)`, {
        protection: { workflowId, mode: protection.mode, ...(protection.initialSyncCopied ? { initialSyncCopied: protection.initialSyncCopied } : {}) },
      });
    }
  }

  async function readManifest(domain: string): Promise<Manifest> {
    const key = new DomainKeys(store.prefix, domain).manifest();
    const body = await store.get(key);
    if (!body) throw conflict(`${domain} has no manifest on the storage site: it was never protected`);
    return parseRecord(manifestSchema, key, body);
  }

  /** A restore point must exist (and hold the VMs asked for); an instant must be inside the protection window. */
  async function checkPoint(domain: string, manifest: Manifest, pointInTime: RestoreInput['pointInTime'], vms: string[] | undefined): Promise<void> {
    if ('at' in pointInTime) {
      const oldest = Date.now() - manifest.protectionWindowMs;
      if (pointInTime.at < oldest) throw badRequest(`pointInTime.at: ${new Date(pointInTime.at).toISOString()} is outside the protection window of ${domain} (from ${new Date(oldest).toISOString()})`, { errors: [{ path: 'pointInTime.at', message: 'outside the protection window' }] });
      return;
    }
    const key = new DomainKeys(store.prefix, domain).point(pointInTime.restorePoint);
    const body = await store.get(key);
    if (!body) throw badRequest(`pointInTime.restorePoint: ${domain} has no restore point ${pointInTime.restorePoint} (GET /domains/${domain}/restore-points lists them)`, { errors: [{ path: 'pointInTime.restorePoint', message: 'unknown restore point' }] });
    const point = parseRecord(restorePointSchema, key, body);
    const inPoint = new Set(point.vms.map((v) => v.name));
    const missing = (vms ?? []).filter((vm) => !inPoint.has(vm));
    if (missing.length > 0) throw badRequest(`vms: ${someNames(missing)} not in restore point ${point.id}`, { errors: [{ path: 'vms', message: `not in the restore point: ${someNames(missing)}` }] });
  }

  return router;
}
