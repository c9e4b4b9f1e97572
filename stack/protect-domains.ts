import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { ObjectStore } from '../datapath/object-store';
import { Ownership } from '../datapath/ownership';
import type { RunbookStore } from '../runbooks/store';
import { validateRunbook } from '../runbooks/validate';
import type { SiteDefinition } from '../sites/config';
import { protectionWorkflowOptions } from '../workflows/phases/protection';
import { protect } from '../workflows/protect';
import { ORCHESTRATION_TASK_QUEUE } from '../workflows/task-queues';

const EXAMPLES = path.join(__dirname, '../runbooks/examples');

/**
 * The embedded stack protects the domains its site definitions declare: the first start stores
 * each domain's example runbook (runbooks/examples/<domain>.yaml) and starts its protection at
 * the site that holds it. Later starts find both in place; a domain that has failed over since
 * keeps its current owner.
 */
export async function protectDefinedDomains(options: { client: Client; store: ObjectStore; runbooks: RunbookStore; sites: SiteDefinition[] }): Promise<string[]> {
  const lines: string[] = [];
  for (const site of options.sites) {
    for (const domain of site.protectedDomains) {
      const example = path.join(EXAMPLES, `${domain.name}.yaml`);
      let runbook = await options.runbooks.latest(domain.name);
      // A stored version from an earlier format is unusable: the example becomes the next version.
      if ((!runbook || !validateRunbook(runbook.text).runbook) && existsSync(example)) {
        await options.runbooks.put(domain.name, readFileSync(example, 'utf8'), 'npm start');
        runbook = await options.runbooks.latest(domain.name);
      }
      const settings = runbook ? validateRunbook(runbook.text).runbook?.spec.protection : undefined;
      const { owner, epoch } = await new Ownership(options.store, domain.name).inspect();
      if (!owner) {
        await options.client.workflow.start(protect, {
          ...protectionWorkflowOptions({
            domain: domain.name,
            site: site.name,
            epoch: 1,
            vms: domain.vms.map((vm) => vm.name),
            ...(settings ? { settings } : {}),
            reason: 'replication into the storage site, restore points',
          }),
          taskQueue: ORCHESTRATION_TASK_QUEUE,
          workflowIdConflictPolicy: 'USE_EXISTING',
        });
      }
      lines.push(
        `Domain ${domain.name}: ${owner ? `owned by ${owner.site} (epoch ${epoch})` : `protection started at ${site.name}`}, runbook ${runbook ? `${domain.name} v${runbook.record.version}` : 'none stored'}`,
      );
    }
  }
  return lines;
}
