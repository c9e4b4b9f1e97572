import type { SiteService } from '../../sites/launch';
import { prepareTestSites, type SiteInput, type TestSites } from './sites';
import { startTestStack, type TestStack } from './stack';
import { TestWorkers } from './workers';

/** What the end-to-end tests stand on: real servers, a primary and a recovery site, and worker processes on demand. */
export interface Testbed {
  stack: TestStack;
  sites: TestSites;
  primary: SiteService;
  recovery: SiteService;
  workers: TestWorkers;
  /** Stops everything, also after a failed test. */
  stop(): Promise<void>;
}

export async function startTestbed(definitions?: SiteInput[]): Promise<Testbed> {
  const stack = await startTestStack();
  try {
    const sites = await prepareTestSites(stack.dir, definitions);
    const [primary, recovery] = await Promise.all([sites.start('primary'), sites.start('recovery')]);
    const workers = new TestWorkers(stack, sites.token);
    return {
      stack,
      sites,
      primary,
      recovery,
      workers,
      stop: async () => {
        await workers.stopAll();
        await Promise.all([primary.process.stop(), recovery.process.stop()]);
        await stack.stop();
      },
    };
  } catch (error) {
    await stack.stop();
    throw error;
  }
}
