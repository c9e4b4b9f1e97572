import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateLargeDomainRunbook } from '../../runbooks/examples/large-domain';
import { renderPlan } from '../../runbooks/plan-text';
import { DEFAULT_ESTIMATES, planRunbook, type PlanEstimates } from '../../runbooks/planner';
import type { Runbook } from '../../runbooks/schema';
import { validateRunbook } from '../../runbooks/validate';
import { THREE_TIER } from './runbook-malformed';

function runbookOf(text: string): Runbook {
  const result = validateRunbook(text);
  assert.deepEqual(result.errors, []);
  return result.runbook!;
}

/** Round numbers so that the expected schedule can be worked out by hand. */
const ESTIMATES: PlanEstimates = {
  ...DEFAULT_ESTIMATES,
  deployRocvaMs: 60_000,
  rehydrateFixedMs: 0,
  rehydratePerGiBMs: 1_000,
  rehydrateStreams: 10,
  registerVmMs: 1_000,
  registerParallelism: 10,
  powerOnMs: 10_000,
  heartbeatMs: 30_000,
  approvalMs: 120_000,
  webhookMs: 1_000,
  assumedDiskGiBPerVm: 10,
};

describe('runbook planner', () => {
  const plan = planRunbook(runbookOf(THREE_TIER), { estimates: ESTIMATES, diskGiBByVm: { 'db-1': 500 } });
  const node = (id: string) => plan.nodes.find((n) => n.id === id)!;

  it('puts the fixed recovery phases before the power-on plan', () => {
    assert.deepEqual(plan.nodes.slice(0, 3).map((n) => [n.id, n.dependsOn]), [['deploy-rocva', []], ['rehydrate', ['deploy-rocva']], ['register-vms', ['rehydrate']]]);
    // 500 GiB for db-1 plus 10 GiB assumed for each of the other five VMs, on 10 streams at 1 s/GiB.
    assert.equal(plan.rehydrateGiB, 550);
    assert.equal(node('rehydrate').expectedMs, 55_000);
    assert.equal(node('register-vms').finishMs, 60_000 + 55_000 + 1_000);
  });

  it('builds the DAG: group starts after its dependencies, steps around the VMs, per-VM chains', () => {
    assert.deepEqual(node('group:database:start').dependsOn, ['register-vms']);
    assert.deepEqual(node('group:app:start').dependsOn, ['group:database:end']);
    assert.deepEqual(node('step:approve-app-start').dependsOn, ['group:app:start']);
    assert.deepEqual(node('power-on:app-1').dependsOn, ['step:approve-app-start']);
    assert.deepEqual(node('delay:app-1').dependsOn, ['power-on:app-1']);
    assert.deepEqual(node('heartbeat:app-1').dependsOn, ['delay:app-1']);
    assert.deepEqual(node('step:update-dns').dependsOn, ['heartbeat:web-1', 'heartbeat:web-2']);
    assert.deepEqual(node('group:web:end').dependsOn, ['step:update-dns']);
    assert.equal(plan.nodes.some((n) => n.vm === 'reporting-1'), false, 'a VM that stays off is not powered on');
    assert.equal(node('step:update-dns').onFailure, 'continue');
    assert.equal(node('power-on:web-1').onFailure, 'pause', 'VMs inherit their group policy');
  });

  it('computes the expected schedule, RTO and critical path by hand-checkable numbers', () => {
    const registered = 116_000;
    // database: power-on 10s + delay 1m + heartbeat min(30s, 10m)
    assert.equal(node('group:database:end').finishMs, registered + 100_000);
    // app: approval 2m, then two VMs in parallel: 10s + 30s + 30s
    assert.equal(node('group:app:end').finishMs, registered + 100_000 + 120_000 + 70_000);
    // web: 10s + 30s heartbeat, then the DNS webhook 1s
    assert.equal(plan.rtoEstimateMs, registered + 100_000 + 190_000 + 40_000 + 1_000);
    assert.deepEqual(plan.criticalPath.filter((id) => !id.startsWith('group:')), [
      'deploy-rocva', 'rehydrate', 'register-vms', 'power-on:db-1', 'delay:db-1', 'heartbeat:db-1', 'step:approve-app-start',
      'power-on:app-2', 'delay:app-2', 'heartbeat:app-2', 'power-on:web-2', 'heartbeat:web-2', 'step:update-dns',
    ]);
  });

  it('takes the worst case from timeouts and retries', () => {
    // database 10s + 1m + 10m; approval 30m; app 10s + 30s + 5m; web 10s + 5m; webhook 20s x 6 attempts
    const worst = 116_000 + 670_000 + 1_800_000 + 340_000 + 310_000 + 120_000;
    assert.equal(plan.rtoWorstCaseMs, worst);
  });

  it('honours maxParallel: VMs beyond the limit wait for a free slot', () => {
    const text = THREE_TIER.replace('        maxParallel: 2\n', '        maxParallel: 1\n');
    const serial = planRunbook(runbookOf(text), { estimates: ESTIMATES });
    const first = serial.nodes.find((n) => n.id === 'power-on:app-1')!;
    const second = serial.nodes.find((n) => n.id === 'power-on:app-2')!;
    assert.equal(second.startMs, first.startMs + 70_000);
    assert.ok(serial.criticalPath.indexOf('heartbeat:app-1') < serial.criticalPath.indexOf('power-on:app-2'), 'the slot wait is on the critical path');
  });

  it('runs independent groups side by side', () => {
    const text = THREE_TIER.replace('dependsOn: [app]', 'dependsOn: [database]');
    const parallel = planRunbook(runbookOf(text), { estimates: ESTIMATES });
    const app = parallel.groups.find((g) => g.name === 'app')!;
    const web = parallel.groups.find((g) => g.name === 'web')!;
    assert.equal(app.startMs, web.startMs);
  });

  it('renders text with the RTO, the groups and the critical path', () => {
    const text = renderPlan(plan);
    assert.match(text, /^Plan for runbook shop-three-tier: domain shop, site-a -> site-b$/m);
    assert.match(text, /RTO estimate 7m27s \(worst case 55m56s, not counting operator pauses\)/);
    assert.match(text, /app: 2 VM\(s\), 2 at a time, after database/);
    assert.match(text, /approval approve-app-start, 2m \(worst 30m\), on failure pause/);
    assert.match(text, /Critical path:\n {2}T\+0s +deploy-rocva/);
  });

  it('plans a 10,000-VM domain with every VM in the DAG and a bounded text rendering', () => {
    const big = planRunbook(runbookOf(generateLargeDomainRunbook(10_000)));
    assert.equal(big.nodes.filter((n) => n.kind === 'power-on').length, 10_000);
    assert.equal(big.groups.reduce((sum, g) => sum + g.vmCount, 0), 10_000);
    assert.ok(big.rtoEstimateMs > 0 && big.rtoWorstCaseMs >= big.rtoEstimateMs);
    assert.ok(renderPlan(big).split('\n').length < 200);
  });
});
