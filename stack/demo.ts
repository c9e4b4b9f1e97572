/**
 * `npm run demo` (with `npm start` running): stages a disaster at the primary site, fails the
 * demo domain over by force through the HTTP API, prints the operation's progress and report,
 * checks every recovered disk byte for byte against the workload's record, and then lets the
 * applications run at the recovery site (a workload writes there).
 * `npm run demo -- --continuous` starts a continuous failover first, waits until its copy at the
 * recovery site follows the log, then stages the disaster and completes it by force.
 * `npm run demo -- --restore` brings the primary site back afterwards: its VMs run again while the
 * recovery site owns the domain (split-brain); the demo waits until the conflict is shown.
 * `npm run demo -- --failback` returns the domain to its original VMs at the primary (planned
 * failback): it brings the primary back and resolves an open split-brain first, saying so, then
 * prints the failback's progress and report and checks every disk at the primary byte for byte.
 * `npm run demo -- --failback --continuous` starts a continuous failback first (the original disks
 * follow the recovery site's log), waits until it has caught up, then fails back: only the tail is applied.
 * `npm run demo -- --permanent` makes the recovery site the domain's primary for good instead
 * (permanent failover, no new recovery site): it prints what was removed from the old primary (or
 * that the removal waits for it to return: `--restore` then brings it back and prints what the
 * removal took) and the runbook version written for the new direction.
 * `npm run demo -- --drill` runs a drill of the domain (docs/drill.md): a test failover at the
 * recovery site on its test networks while production keeps running, the runbook's checks, and a
 * cleanup; it prints the drill's report and checks that the recovery site's VMs and disks are as before.
 * `npm run demo -- --revert` restores the domain in place (docs/restore.md) at the site that owns it
 * to the instant 30 s back while its workload writes: it prints the report with the restore point
 * saved before (restoring to it undoes the revert) and checks every disk byte for byte.
 *
 * Which writes a disk must hold is kept in `<data>/demo/lineage.json`: the periods the domain ran
 * at each site, as journal positions of that site's workload record, so that failover, failback
 * and failover again all verify against the same history.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { DomainHoldings } from '../activities/permanent-failover';
import { loadSettings } from '../common/config';
import { describeError, OperatorError } from '../common/errors';
import { activeDomainVms } from '../datapath/conflict';
import { loadSiteDefinitions, type SiteDefinition } from '../sites/config';
import { siteClients, readSiteTokens } from '../sites/registry';
import { diskContentAfter, readWorkloadRecord, type WorkloadWrite, type WritePeriod } from '../sites/workload';
import type { DrillReport } from '../workflows/drill-messages';
import type { Listing } from '../workflows/listing';
import type { RestoreReport } from '../workflows/restore-messages';
import type { FollowingStatus, OperationProgress, OperationReport } from '../workflows/operation-messages';
import { readLocalToken } from './credentials';

const DOMAIN = 'demo';
const started = Date.now();
const say = (message: string) => console.log(`[demo ${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}`);
const seconds = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface ShownConflict {
  site: string;
  vms: string[];
  since: string;
  owner: { site: string; epoch: number };
}

interface StartedOperation {
  workflowId: string;
  statusUrl: string;
  webUiUrl?: string;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { restore: { type: 'boolean' }, continuous: { type: 'boolean' }, failback: { type: 'boolean' }, permanent: { type: 'boolean' }, drill: { type: 'boolean' }, revert: { type: 'boolean' } } });
  const continuousFailback = values.failback && values.continuous;
  if ([values.restore, values.continuous, values.failback, values.permanent, values.drill, values.revert].filter(Boolean).length > (continuousFailback ? 2 : 1)) {
    throw new OperatorError('use one of --restore, --continuous, --failback, --permanent, --drill, --revert at a time (or --failback --continuous)');
  }
  const settings = loadSettings();
  const api = `http://${settings.api.host}:${settings.api.port}`;
  const token = readLocalToken(settings.dataDir, 'operator');
  const definitions = loadSiteDefinitions();
  const siteTokens = readSiteTokens(path.join(settings.dataDir, 'secrets', 'site-tokens.json'));
  const clients = siteClients(definitions, siteTokens);
  const primary = definitions.find((d) => d.protectedDomains.some((p) => p.name === DOMAIN));
  const recovery = definitions.find((d) => d !== primary);
  if (!primary || !recovery) throw new OperatorError(`the site definitions have no domain ${DOMAIN} and recovery site`);
  const adminCall = async (site: SiteDefinition, route: string, method = 'POST', body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${site.adminPort}${route}`, {
      method,
      headers: { authorization: `Bearer ${siteTokens[site.name]}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    }).catch(() => {
      throw new OperatorError(`the admin port of site ${site.name} does not answer: is \`npm start\` running?`);
    });
    if (!res.ok) throw new OperatorError(`site ${site.name} admin ${route} answered ${res.status}`);
    return (await res.json()) as { up: boolean; workload: { running: boolean; settings: Record<string, unknown> | null } };
  };
  const call = async (method: string, route: string, body?: unknown) => {
    const res = await fetch(`${api}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    }).catch(() => {
      throw new OperatorError(`the API at ${api} does not answer: is \`npm start\` running?`);
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (res.status >= 400) throw new OperatorError(`${method} ${route} answered ${res.status}: ${String(json.detail ?? json.title)}`);
    return json;
  };

  /** The workload's record of a site: every write with its journal position there. */
  const recordOf = (site: string): WorkloadWrite[] => readWorkloadRecord(path.join(settings.dataDir, 'sites', site, 'workload-record.jsonl'));
  const lastSequence = (site: string) => recordOf(site).reduce((max, w) => Math.max(max, w.sequence), 0);

  /** Where the domain's writes were made: a period per stay at a site, the last one open. */
  const lineageFile = path.join(settings.dataDir, 'demo', 'lineage.json');
  const readLineage = (): WritePeriod[] => (existsSync(lineageFile) ? (JSON.parse(readFileSync(lineageFile, 'utf8')) as WritePeriod[]) : [{ site: primary.name, after: 0 }]);
  const writeLineage = (periods: WritePeriod[]) => {
    mkdirSync(path.dirname(lineageFile), { recursive: true });
    writeFileSync(lineageFile, JSON.stringify(periods, null, 2));
  };
  /** The lineage with its open period, at `site`, closed at the journal position an operation recovered. */
  const closeAt = (site: string, upTo: number): WritePeriod[] => {
    const periods = readLineage();
    const open = periods.at(-1);
    if (open?.site !== site || open.upTo !== undefined) {
      throw new OperatorError(`${lineageFile} does not say that ${DOMAIN} ran at ${site} until now, so its disks cannot be checked (was it moved outside the demo?); for a fresh demo stop \`npm start\`, delete ${settings.dataDir} and start again`);
    }
    return [...periods.slice(0, -1), { ...open, upTo }];
  };

  /** Every disk of the domain's VMs at `site` against what the periods' writes leave on it. */
  async function verifyDisks(site: SiteDefinition, vmNames: string[], periods: WritePeriod[]): Promise<{ disks: number; vms: number }> {
    const records = new Map<string, WorkloadWrite[]>();
    const recordFor = (name: string) => records.get(name) ?? records.set(name, recordOf(name)).get(name)!;
    const client = clients.get(site.name)!;
    const vms = (await client.listVms()).filter((vm) => vm.kind === 'vm' && vmNames.includes(vm.name));
    let disks = 0;
    for (const vm of vms) {
      for (const diskId of vm.diskIds) {
        const { sizeBytes } = await client.getDisk(diskId);
        const actual = await client.readDisk(diskId, 0, sizeBytes);
        if (!actual.equals(diskContentAfter(recordFor, periods, diskId, sizeBytes))) {
          throw new OperatorError(`disk ${diskId} of ${vm.name} at ${site.name} differs from the writes it must hold (${periods.map(describePeriod).join(', then ')})`);
        }
        disks++;
      }
    }
    return { disks, vms: vms.length };
  }
  const describePeriod = (p: WritePeriod) => `${p.site}'s writes after journal sequence ${p.after}${p.upTo !== undefined ? ` up to ${p.upTo}` : ''}`;

  /** Follows an operation's progress until it ends; its report, or why it did not succeed. */
  async function follow(operation: StartedOperation, what: string): Promise<OperationReport> {
    say(`operation ${operation.workflowId}${operation.webUiUrl ? `\n    watch it in the Temporal Web UI: ${operation.webUiUrl}` : ''}`);
    let lastLine = '';
    for (;;) {
      const status = await call('GET', operation.statusUrl);
      const progress = status.progress as OperationProgress | undefined;
      if (progress) {
        const vms = progress.vms.map((v) => `${v.name} ${v.state}`).join(', ');
        const line = `${progress.phase}${progress.bytesRehydrated > 0 ? ` — ${progress.bytesRehydrated} bytes rehydrated` : ''}${vms ? ` — VMs: ${vms}` : ''}`;
        if (line !== lastLine) say(line);
        lastLine = line;
      }
      if (status.status === 'COMPLETED') return status.result as OperationReport;
      if (status.status !== 'RUNNING') throw new OperatorError(`the ${what} ended ${String(status.status)}: ${JSON.stringify(status.result, null, 2)}`);
      await sleep(500);
    }
  }

  function printReport(title: string, report: OperationReport, owner: string): void {
    const rehydrated = report.rehydration
      ? `${report.rehydration.kind === 'delta' ? 'delta: only the changes since the failover' : 'full'}, ${report.rehydration.bytesWritten} bytes written${report.rehydration.why ? `\n                   (not by delta: ${report.rehydration.why})` : ''}`
      : `${report.bytesRehydrated} bytes${report.tail ? `, of which ${report.tail.bytesWritten} bytes (${report.tail.segments} segments) in the tail, after the completion was requested` : ''}`;
    console.log(`\n  ${title} of ${DOMAIN}: ${report.outcome}
    RTO achieved   ${seconds(report.rtoMs)} (declared ${new Date(report.declaredAt).toISOString()})
    RPO achieved   ${seconds(report.rpoMs)} (data from ${report.recoveryPoint ? new Date(report.recoveryPoint.dataFrom).toISOString() : '-'}, ${report.recoveryPoint?.description ?? ''})
    ownership      ${owner}, epoch ${report.epoch ?? '-'}
    rehydration    ${rehydrated}
    steps:\n${report.steps.map((s) => `      ${s.stage ? '  ' : ''}${s.name.padEnd(s.stage ? 48 : 50)} ${seconds(s.durationMs).padStart(8)}`).join('\n')}\n`);
  }

  /** After the primary's return: its split-brain watch records the conflict within seconds. */
  async function waitForConflict(): Promise<ShownConflict | undefined> {
    for (let waited = 0; waited <= 30_000; waited += 1_000) {
      const { conflict } = (await call('GET', `/domains/${DOMAIN}`)) as { conflict: ShownConflict | null };
      if (conflict) {
        say(`split-brain conflict: ${conflict.site} runs ${conflict.vms.join(', ')} since ${conflict.since} while ${conflict.owner.site} owns ${DOMAIN} (see GET /domains/${DOMAIN}, or DrConflict = "${DOMAIN}" in the Web UI)`);
        return conflict;
      }
      await sleep(1_000);
    }
    say(`no split-brain conflict was recorded within 30 s (the primary's VMs of ${DOMAIN} may not run); see GET /domains/${DOMAIN}`);
    return undefined;
  }

  if (values.restore) {
    await adminCall(primary, '/admin/restore');
    const { permanentFailover } = (await call('GET', `/domains/${DOMAIN}`)) as { permanentFailover: { retiredSite: string; retiredBy: string; workflowId: string } | null };
    if (permanentFailover?.retiredSite === primary.name) return awaitRetirement(permanentFailover);
    say(`site ${primary.name} is back; its VMs of ${DOMAIN} run again, fenced: the domain is owned by ${recovery.name} now`);
    if (await waitForConflict()) {
      say(`resolve it with: curl -X POST ${api}/domains/${DOMAIN}/resolve-conflict -H "authorization: Bearer <operator token>" -H 'content-type: application/json' -d '{"action":"deactivate"}'`);
      say(`or fail back with: npm run demo -- --failback (it resolves the conflict first)`);
    }
    return;
  }
  if (values.failback) return failBack();
  if (values.permanent) return failOverPermanently();
  if (values.drill) return runDrill();
  if (values.revert) return revert();

  for (let waited = 0; ; waited += 1_000) {
    const { owner, protection } = (await call('GET', `/domains/${DOMAIN}`)) as { owner: { site: string } | null; protection: { mode: string; cursor: number } | null };
    if (owner && owner.site !== primary.name) {
      throw new OperatorError(`${DOMAIN} runs at ${owner.site} already (an earlier demo failed it over): fail it back with \`npm run demo -- --failback\`, or for a fresh demo stop \`npm start\`, delete ${settings.dataDir} and start again`);
    }
    if (protection?.mode === 'log' && protection.cursor > 0) break;
    if (waited === 0) say(`waiting for ${DOMAIN}'s protection to finish its initial sync (mode ${protection?.mode ?? 'unknown'})`);
    if (waited > 300_000) throw new OperatorError(`${DOMAIN} is not replicating in log mode after 5 minutes; see .logs/`);
    await sleep(1_000);
  }
  if (values.continuous) await followUntilCaughtUp();
  say(`staging a disaster: site ${primary.name} goes down and refuses every connection`);
  await adminCall(primary, '/admin/outage');
  say(
    values.continuous
      ? `completing the continuous failover of ${DOMAIN} by force, confirmed by naming the domain`
      : `forced failover of ${DOMAIN} to ${recovery.name}, confirmed by naming the domain`,
  );
  const operation = (await call('POST', `/domains/${DOMAIN}/failover`, { type: 'forced', confirm: DOMAIN })) as unknown as StartedOperation;

  /** Continuous failover: a copy at the recovery site follows the primary's log until the disaster. */
  async function followUntilCaughtUp(): Promise<void> {
    await startFollowing('continuous-failover', `RocVA and representation VMs at ${recovery!.name}, rehydrating, then following the log`, recovery!.name);
  }

  /**
   * Starts a continuous operation and returns a few seconds after its copy has first caught up with
   * the log, while the workload keeps writing where the domain runs.
   */
  async function startFollowing(operation: 'continuous-failover' | 'continuous-failback', what: string, copyAt: string): Promise<void> {
    const started = (await call('POST', `/domains/${DOMAIN}/${operation}`, {})) as { workflowId: string; webUiUrl?: string };
    say(`${operation.replace('-', ' ')} ${started.workflowId}: ${what}${started.webUiUrl ? `\n    watch it in the Temporal Web UI: ${started.webUiUrl}` : ''}`);
    const shown = operation === 'continuous-failover' ? 'continuousFailover' : 'continuousFailback';
    const caughtUpMode = operation === 'continuous-failover' ? 'Continuous Rehydration in Progress' : 'Continuous Failback in Progress';
    let caughtUpAt: number | undefined;
    for (let polls = 0; ; polls++) {
      const domain = (await call('GET', `/domains/${DOMAIN}`)) as { mode: string } & Partial<Record<typeof shown, { phase: string | null; following: FollowingStatus | null }>>;
      const f = domain[shown]?.following;
      if (f && polls % 4 === 0) say(`mode ${domain.mode}: ${f.vms} VM(s) at ${copyAt}, lag ${seconds(f.lag.ms)} / ${f.lag.bytes} bytes, ${f.bytesWritten} bytes applied`);
      if (domain.mode === caughtUpMode) caughtUpAt ??= Date.now();
      if (caughtUpAt !== undefined && Date.now() - caughtUpAt > 5_000) return;
      if (polls > 1_200) throw new OperatorError(`the ${operation.replace('-', ' ')} did not catch up within 5 minutes; see ${started.workflowId} in the Web UI`);
      await sleep(250);
    }
  }

  const report = await follow(operation, 'failover');
  printReport(values.continuous ? 'Continuous failover' : 'Failover', report, recovery.name);
  const sequence = report.recoveryPoint?.lastJournalSequence;
  if (sequence === undefined) throw new OperatorError('the report names no journal position to verify against');
  const periods = closeAt(primary.name, sequence);
  const verified = await verifyDisks(recovery, report.vms.map((v) => v.name), periods);
  const earlier = periods.length > 1 ? `, on top of what it wrote in its earlier stays (${lineageFile})` : '';
  say(`verified: ${verified.disks} disk(s) of ${verified.vms} VM(s) at ${recovery.name} are byte-identical to the primary's writes up to journal sequence ${sequence}${earlier}`);
  // The applications run at the recovery site now: what they write there is what a failback carries back.
  writeLineage([...periods, { site: recovery.name, after: lastSequence(recovery.name) }]);
  if (primary.workload) {
    await adminCall(recovery, '/admin/workload', 'POST', { ...primary.workload, seed: `${primary.workload.seed}-at-${recovery.name}` });
    say(`the applications run at ${recovery.name} now: a workload writes ${primary.workload.writesPerSecond} blocks/s to the recovered VMs`);
  }
  say(`bring the primary site back with: npm run demo -- --restore; then fail back with: npm run demo -- --failback`);

  /**
   * Permanent failover: the recovery site, where the domain runs in failover, becomes its primary
   * for good, with no new recovery site. The old primary is cleared of the domain now if it answers,
   * else by a workflow that waits for it (`--restore` brings it back, and the removal follows).
   */
  async function failOverPermanently(): Promise<void> {
    const domain = (await call('GET', `/domains/${DOMAIN}`)) as { mode: string; owner: { site: string } | null };
    if (domain.mode !== 'Running in Failover') {
      throw new OperatorError(`${DOMAIN} is ${domain.mode}${domain.owner ? ` at ${domain.owner.site}` : ''}: only a domain running in failover can be failed over permanently (\`npm run demo\` fails it over first)`);
    }
    const { up } = await adminCall(primary!, '/admin/state', 'GET');
    say(`permanent failover of ${DOMAIN}: ${recovery!.name} becomes its primary for good and ${primary!.name} is retired (${up ? 'it answers: the domain is removed there now' : 'it is down: the domain is removed there when it returns'}); no new recovery site, so ${DOMAIN} is protected to the storage site only`);
    const operation = (await call('POST', `/domains/${DOMAIN}/permanent-failover`, { confirm: DOMAIN })) as unknown as StartedOperation;
    const report = await follow(operation, 'permanent failover');
    console.log(`\n  Permanent failover of ${DOMAIN}: ${report.outcome}\n    steps:\n${report.steps.map((s) => `      ${s.name.padEnd(70)} ${seconds(s.durationMs).padStart(8)}`).join('\n')}\n`);
    const retirement = report.retirement;
    if (retirement?.state === 'removed' && retirement.removed) {
      sayRemoved(retirement.site, retirement.removed);
    } else if (retirement) {
      say(`${retirement.site} is not cleared yet (${retirement.why ?? 'pending'}): ${retirement.workflowId} removes ${DOMAIN} there once it answers; \`npm run demo -- --restore\` brings it back`);
    }
    const direction = report.newDirection;
    if (direction) {
      const version = (await call('GET', `/runbooks/${direction.runbook.name}/versions/${direction.runbook.version}`)) as { submittedBy: string; text: string };
      say(`runbook ${direction.runbook.name} v${direction.runbook.version} (submitted by ${version.submittedBy}): primary ${direction.primary}, recovery ${direction.recovery ?? 'none'}; the versions before it are kept (GET /runbooks/${direction.runbook.name}/diff?from=${direction.runbook.version - 1}&to=${direction.runbook.version})`);
      console.log(version.text.trimEnd().replace(/^/gm, '      '));
    }
    const { mode, status } = (await call('GET', `/domains/${DOMAIN}`)) as { mode: string; status: { runningAt: string } | null };
    say(`${DOMAIN} is ${mode} at ${status?.runningAt ?? recovery!.name}, protected from there; a failback is refused from now on`);
  }

  function sayRemoved(site: string, { vms, diskIds }: DomainHoldings): void {
    say(`removed from ${site}: ${vms.length} VM(s) (${vms.map((vm) => `${vm.name}${vm.kind === 'vm' ? (vm.poweredOn ? ' [was running]' : '') : ` [${vm.kind}]`}`).join(', ') || 'none'}) and ${diskIds.length} disk(s) (${diskIds.join(', ') || 'none'})`);
  }

  /** The primary returned after a permanent failover retired it: the removal waiting for it runs now. */
  async function awaitRetirement(record: { retiredBy: string; workflowId: string }): Promise<void> {
    say(`site ${primary!.name} is back; ${record.workflowId} retired it, so ${record.retiredBy} removes what it holds of ${DOMAIN} (its VMs run there again: stale copies)`);
    for (;;) {
      const status = await call('GET', `/operations/${encodeURIComponent(record.retiredBy)}`);
      if (status.status === 'COMPLETED') return sayRemoved(primary!.name, status.result as DomainHoldings);
      if (status.status !== 'RUNNING') throw new OperatorError(`${record.retiredBy} ended ${String(status.status)}; see the Web UI`);
      await sleep(1_000);
    }
  }

  /**
   * Planned failback to the original VMs at the primary: the primary must be up and hold no
   * active copy of the domain, so an open split-brain is resolved first (the stale copies are
   * deactivated, their writes kept as a side copy).
   */
  /**
   * A drill at the recovery site while production keeps running: the drill's copies of the VMs on
   * the runbook's test networks, its checks, then the cleanup; the site's VMs and disks are compared
   * with those before the drill here too, not only in the report.
   */
  async function runDrill(): Promise<void> {
    await untilLogging();
    const site = clients.get(recovery!.name)!;
    const inventory = async () => {
      const [vms, disks] = await Promise.all([site.listVms(), site.listDisks()]);
      return JSON.stringify({ vms: vms.map((v) => v.name).sort(), disks: disks.map((d) => d.id).sort() });
    };
    const before = await inventory();
    const domain = (await call('GET', `/domains/${DOMAIN}`)) as { mode: string; owner: { site: string; epoch: number } | null };
    say(`drill of ${DOMAIN} at ${recovery!.name} on its test networks while it stays ${domain.mode} at ${domain.owner?.site ?? '-'} (epoch ${domain.owner?.epoch ?? '-'})`);
    const operation = (await call('POST', `/domains/${DOMAIN}/drill`, {})) as unknown as StartedOperation;
    const report = (await follow(operation, 'drill')) as OperationReport & { drill?: DrillReport };
    const drill = report.drill;
    if (!drill) throw new OperatorError(`the report of ${operation.workflowId} has no drill section`);
    const counted = (counts: Record<string, number | undefined>) => Object.entries(counts).map(([kind, n]) => `${n} ${kind}${n === 1 ? '' : 's'}`).join(', ') || 'none';
    const listed = <T>(listing: Listing<T>, show: (item: T) => string) => (listing.count > 0 ? `${listing.first.map(show).join(', ')}${listing.count > listing.first.length ? ` and ${listing.count - listing.first.length} more` : ''}` : 'none');
    console.log(`
  Drill ${drill.id} of ${DOMAIN}: ${drill.outcome.toUpperCase()}${drill.failedBecause ? ` (${drill.failedBecause.join('; ')})` : ''}
    RTO achieved   ${seconds(report.rtoMs)} (requested ${new Date(report.declaredAt).toISOString()})
    RPO achieved   ${seconds(report.rpoMs)} (data from ${report.recoveryPoint ? new Date(report.recoveryPoint.dataFrom).toISOString() : '-'}, ${report.recoveryPoint?.description ?? ''})
    checks:\n${drill.checks.map((c) => `      ${c.passed ? 'passed' : 'FAILED'} ${c.name} (${c.type})\n${c.vms.first.map((v) => `          ${v.vm}: ${v.passed ? 'passed' : 'failed'}, ${v.detail}, after ${seconds(v.waitedMs)}`).join('\n')}${c.vms.count > c.vms.first.length ? `\n          and ${c.vms.count - c.vms.first.length} more VMs (${c.failed} failed in all)` : ''}`).join('\n')}
    skipped webhooks ${drill.skippedWebhooks.length > 0 ? drill.skippedWebhooks.join(', ') : 'none'}
    kept           ${seconds(drill.kept.forMs)}, ended by ${drill.kept.endedBy}
    cleanup        requested by ${drill.cleanup.requestedBy}${drill.cleanup.force ? ' (forced)' : ''}
      removed      ${counted(drill.cleanup.removed)}
      already gone ${counted(drill.cleanup.alreadyGone)}
      not removed  ${listed(drill.cleanup.notRemoved, (r) => `${r.kind} ${r.name}: ${r.why}`)}
      inventory    ${drill.cleanup.inventory.asBefore ? 'as before' : `NOT as before: left behind ${listed(drill.cleanup.inventory.leftBehind, String)}; appeared ${listed(drill.cleanup.inventory.otherChanges.appeared, String)}; disappeared ${listed(drill.cleanup.inventory.otherChanges.disappeared, String)}`} (${drill.cleanup.inventory.before.vms} VMs, ${drill.cleanup.inventory.before.disks} disks before)
    steps:\n${report.steps.map((s) => `      ${s.name.padEnd(50)} ${seconds(s.durationMs).padStart(8)}`).join('\n')}
`);
    if ((await inventory()) !== before) throw new OperatorError(`the VMs and disks at ${recovery!.name} differ from those before the drill`);
    const after = (await call('GET', `/domains/${DOMAIN}`)) as { mode: string; owner: { site: string; epoch: number } | null };
    say(`verified: ${recovery!.name} has exactly the VMs and disks it had before the drill; ${DOMAIN} is ${after.mode} at ${after.owner?.site ?? '-'} (epoch ${after.owner?.epoch ?? '-'}), as before`);
    if (drill.outcome !== 'passed') throw new OperatorError(`the drill failed: ${drill.failedBecause?.join('; ') ?? 'see its report'}`);
  }

  /** Waits until the domain's protection logs every write (its initial sync done). */
  async function untilLogging(): Promise<void> {
    for (let waited = 0; ; waited += 1_000) {
      const { protection } = (await call('GET', `/domains/${DOMAIN}`)) as { protection: { mode: string; cursor: number } | null };
      if (protection?.mode === 'log' && protection.cursor > 0) return;
      if (waited === 0) say(`waiting for ${DOMAIN}'s protection to finish its initial sync (mode ${protection?.mode ?? 'unknown'})`);
      if (waited > 300_000) throw new OperatorError(`${DOMAIN} is not replicating in log mode after 5 minutes; see .logs/`);
      await sleep(1_000);
    }
  }

  /**
   * A restore in place at the site that owns the domain, to the instant 30 s back, while the
   * workload writes there: the disks then hold that site's writes up to the instant and those made
   * since the VMs came back up, which is checked with the workload stopped, and the lineage says so
   * from then on (the writes in between are gone).
   */
  async function revert(): Promise<void> {
    await untilLogging();
    const { owner } = (await call('GET', `/domains/${DOMAIN}`)) as { owner: { site: string; epoch: number } | null };
    const at = definitions.find((d) => d.name === owner?.site);
    if (!owner || !at) throw new OperatorError(`${DOMAIN} is owned by no site the demo knows`);
    const instant = Date.now() - 30_000;
    const upTo = recordOf(at.name).reduce((max, w) => (w.at <= instant ? Math.max(max, w.sequence) : max), 0);
    const stay = closeAt(at.name, upTo);
    if (upTo <= stay.at(-1)!.after) throw new OperatorError(`${DOMAIN} has not run at ${at.name} for 30 s yet (${lineageFile}); try again in a while`);
    say(`restore of ${DOMAIN} in place at ${at.name} (epoch ${owner.epoch}) to ${new Date(instant).toISOString()}, while its workload writes`);
    const operation = (await call('POST', `/domains/${DOMAIN}/restore`, { pointInTime: { at: new Date(instant).toISOString() }, confirm: DOMAIN })) as unknown as StartedOperation;
    const report = (await follow(operation, 'restore')) as OperationReport & { restore?: RestoreReport };
    const restored = report.restore;
    if (!restored) throw new OperatorError(`the report of ${operation.workflowId} has no restore section`);
    printReport('Restore', report, at.name);
    console.log(`    saved point    ${restored.savedPoint.id} (${new Date(restored.savedPoint.timestamp).toISOString()}): the state the restore replaced
    undo with      curl -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' ${api}/domains/${DOMAIN}/restore -d '{"pointInTime": {"restorePoint": "${restored.savedPoint.id}"}, "confirm": "${DOMAIN}"}'
    epochs         ${restored.epochs.before} -> ${restored.epochs.after}
    VMs            ${restored.vms.map((v) => `${v.vm} ${v.restored ? `restored, ${v.state ?? '-'}` : `untouched (${v.why})`}`).join('; ')}
`);
    const shutDownAt = report.steps.find((s) => s.name.startsWith('shut down VMs'))?.endedAt ?? report.declaredAt;
    const { workload } = await adminCall(at, '/admin/state', 'GET');
    await adminCall(at, '/admin/workload', 'DELETE');
    // The VMs wrote nothing between their shutdown and the power-on: what they wrote since starts after.
    const since = recordOf(at.name).reduce((max, w) => (w.at <= shutDownAt ? Math.max(max, w.sequence) : max), 0);
    const periods = [...stay, { site: at.name, after: since }];
    const verified = await verifyDisks(at, restored.vms.map((v) => v.vm), periods);
    say(`verified: ${verified.disks} disk(s) of ${verified.vms} VM(s) at ${at.name} hold ${at.name}'s writes up to journal sequence ${upTo} (the instant) and those since the restore, nothing in between`);
    writeLineage(periods);
    if (workload.settings) await adminCall(at, '/admin/workload', 'POST', workload.settings);
  }

  async function failBack(): Promise<void> {
    const domain = (await call('GET', `/domains/${DOMAIN}`)) as { mode: string; owner: { site: string } | null; conflict: ShownConflict | null };
    if (domain.mode !== 'Running in Failover') {
      throw new OperatorError(`${DOMAIN} is ${domain.mode}${domain.owner ? ` at ${domain.owner.site}` : ''}: there is nothing to fail back (\`npm run demo\` fails it over first)`);
    }
    if (!(await adminCall(primary!, '/admin/state', 'GET')).up) {
      say(`site ${primary!.name} is still down: bringing it back first (what \`npm run demo -- --restore\` does)`);
      await adminCall(primary!, '/admin/restore');
    }
    let conflict = domain.conflict ?? undefined;
    if (!conflict) {
      const running = activeDomainVms(await clients.get(primary!.name)!.listVms(), { running: true, domain: DOMAIN }).get(DOMAIN) ?? [];
      if (running.length > 0) {
        say(`${running.join(', ')} run at ${primary!.name} while ${recovery!.name} owns ${DOMAIN}: waiting for the split-brain watch to record the conflict`);
        conflict = await waitForConflict();
      }
    }
    if (conflict) {
      say(`resolving the split-brain first: POST /domains/${DOMAIN}/resolve-conflict {"action":"deactivate"} powers the stale copies at ${conflict.site} off and marks them inactive, and keeps what they wrote since the fence as a side copy, outside the domain's log`);
      const resolving = (await call('POST', `/domains/${DOMAIN}/resolve-conflict`, { action: 'deactivate' })) as unknown as StartedOperation;
      const resolved = await follow(resolving, 'resolution of the conflict');
      const copy = resolved.sideCopy;
      if (copy) {
        say(`side copy ${copy.name}: ${copy.entries} write(s), ${copy.bytes} bytes that ${copy.vms.join(', ')} made at ${copy.site} after journal sequence ${copy.afterSequence} (where epoch ${copy.fencedEpoch} was fenced); never part of the domain's disks`);
      }
    }

    if (values.continuous) await startFollowing('continuous-failback', `a RocVA at ${primary!.name} applies ${recovery!.name}'s log to the original disks there, the original VMs staying off`, primary!.name);
    // The primary's writes from here on are its workload's once the original VMs run again.
    const resumedAfter = lastSequence(primary!.name);
    say(
      values.continuous
        ? `completing the continuous failback of ${DOMAIN} (planned): shut down at ${recovery!.name}, drain, hand ownership back, apply only the tail at ${primary!.name}`
        : `planned failback of ${DOMAIN} from ${recovery!.name} to its original VMs at ${primary!.name}: shut down at ${recovery!.name}, drain, hand ownership back, rehydrate at ${primary!.name}`,
    );
    const operation = (await call('POST', `/domains/${DOMAIN}/failback`, { type: 'planned' })) as unknown as StartedOperation;
    const report = await follow(operation, 'failback');
    // The recovery site holds no VM of the domain any more: nothing for its workload to write to.
    await adminCall(recovery!, '/admin/workload', 'DELETE');
    printReport(values.continuous ? 'Continuous failback' : 'Failback', report, primary!.name);
    const sequence = report.recoveryPoint?.lastJournalSequence;
    if (sequence === undefined) throw new OperatorError('the report names no journal position to verify against');
    const notCarried = recordOf(recovery!.name).filter((w) => w.sequence > sequence).length;
    if (notCarried > 0) throw new OperatorError(`${notCarried} write(s) acknowledged at ${recovery!.name} are not in the failback's recovery point (journal sequence ${sequence})`);

    // The workload at the primary writes to the original VMs again; paused while their disks are read, so that nothing changes under the comparison.
    const { workload } = await adminCall(primary!, '/admin/state', 'GET');
    if (workload.running) await adminCall(primary!, '/admin/workload', 'DELETE');
    try {
      await sleep(300);
      const periods = [...closeAt(recovery!.name, sequence), { site: primary!.name, after: resumedAfter }];
      const since = recordOf(primary!.name).filter((w) => w.sequence > resumedAfter).length;
      const verified = await verifyDisks(primary!, report.vms.map((v) => v.name), periods);
      say(`verified: ${verified.disks} disk(s) of ${verified.vms} VM(s) at ${primary!.name} are byte-identical to ${recovery!.name}'s last write (journal sequence ${sequence}), plus the ${since} write(s) the workload made at ${primary!.name} since they came back`);
      writeLineage(periods);
    } finally {
      if (workload.running && workload.settings) await adminCall(primary!, '/admin/workload', 'POST', workload.settings);
    }
    const left = (await clients.get(recovery!.name)!.listVms()).filter((vm) => report.vms.some((v) => vm.name.includes(v.name))).map((vm) => vm.name);
    const { mode } = (await call('GET', `/domains/${DOMAIN}`)) as { mode: string };
    say(`${DOMAIN} is ${mode} at ${primary!.name} again; ${recovery!.name} holds ${left.length > 0 ? `still ${left.join(', ')}` : 'none of its VMs'}; \`npm run demo\` stages the next disaster`);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof OperatorError ? error.message : `demo failed: ${describeError(error)}`);
  process.exit(1);
});
