/**
 * Which power-on groups an operation runs inside its own workflow instead of a child each: only
 * groups no operator may have to act on, and no more VMs than keep the operation's history bounded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateRunbook } from '../../runbooks/validate';
import { groupsPoweredOnInOperation, VMS_POWERED_ON_IN_OPERATION } from '../../workflows/power-on-plan';
import { recordingSiteRunbook } from '../harness/recording-site';

function groups(yamlGroups: string, vms: string[]) {
  const result = validateRunbook(recordingSiteRunbook('in-operation', vms.map((v) => `{ name: ${v} }`), `    groups:\n${yamlGroups}`));
  assert.ok(result.runbook, JSON.stringify(result.errors));
  return result.runbook.spec.powerOn.groups;
}

const names = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`);
const vmList = (vms: string[]) => `[${vms.map((v) => `{ name: ${v} }`).join(', ')}]`;

describe('power-on groups run inside the operation', () => {
  it('keeps a child for every group an operator may act on: approval or webhook steps, a pause policy of the group or of one VM', () => {
    const planned = groups(
      `      - name: plain
        vms: [{ name: a-1 }]
      - name: gated
        before: [{ name: go, type: approval, approvers: [lead], timeout: 5m }]
        vms: [{ name: b-1 }]
      - name: hooked
        after: [{ name: dns, type: webhook, url: 'https://dns.example/records' }]
        vms: [{ name: c-1 }]
      - name: pausing
        onFailure: pause
        vms: [{ name: d-1 }]
      - name: one-vm-pauses
        vms: [{ name: e-1 }, { name: e-2, onFailure: pause }]
      - name: continuing
        onFailure: continue
        vms: [{ name: f-1, onFailure: abort }]`,
      ['a-1', 'b-1', 'c-1', 'd-1', 'e-1', 'e-2', 'f-1'],
    );
    assert.deepEqual([...groupsPoweredOnInOperation(planned)], ['plain', 'continuing']);
  });

  it(`takes groups in the runbook's order while their VMs fit ${VMS_POWERED_ON_IN_OPERATION}; a group that does not fit is a child, a later small one still fits`, () => {
    const [first, big, last] = [names('first', VMS_POWERED_ON_IN_OPERATION - 10), names('big', 11), names('last', 10)];
    const planned = groups(
      `      - name: first
        vms: ${vmList(first)}
      - name: big
        vms: ${vmList(big)}
      - name: last
        vms: ${vmList(last)}`,
      [...first, ...big, ...last],
    );
    assert.deepEqual([...groupsPoweredOnInOperation(planned)], ['first', 'last']);
  });

  it('runs a group larger than the bound as a child even when it is the only one', () => {
    const vms = names('web', VMS_POWERED_ON_IN_OPERATION + 1);
    assert.deepEqual([...groupsPoweredOnInOperation(groups(`      - name: web\n        vms: ${vmList(vms)}`, vms))], []);
  });
});
