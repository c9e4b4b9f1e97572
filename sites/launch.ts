import { startChild, waitUntilReady, type ChildHandle } from '../common/child-process';
import { programArgs } from '../common/programs';
import { SiteClient } from './client';

export interface SiteServiceOptions {
  site: string;
  dataDir: string;
  logFile: string;
  token: string;
  sitesFile?: string;
  /** Override the definition's ports (tests use free ones). */
  port?: number;
  adminPort?: number;
  /** The definition's ports, when not overridden. */
  definitionPorts: { port: number; adminPort: number };
  /** The process's environment, this process's by default; it says whether the site runs compiled (common/programs.ts). */
  env?: NodeJS.ProcessEnv;
}

export interface SiteService {
  process: ChildHandle;
  url: string;
  adminUrl: string;
  client: SiteClient;
}

/** Starts one simulated site as a child process and waits until it answers its health check. */
export async function startSiteService(o: SiteServiceOptions): Promise<SiteService> {
  const port = o.port ?? o.definitionPorts.port;
  const adminPort = o.adminPort ?? o.definitionPorts.adminPort;
  const child = startChild({
    name: `site-${o.site}`,
    command: process.execPath,
    args: [
      ...programArgs('site', o.env),
      '--site',
      o.site,
      '--data',
      o.dataDir,
      '--port',
      String(port),
      '--admin-port',
      String(adminPort),
      ...(o.sitesFile ? ['--sites-file', o.sitesFile] : []),
    ],
    logFile: o.logFile,
    env: { ...(o.env ?? process.env), DR_SITE_TOKEN: o.token },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntilReady(child, async () => {
    const [site, admin] = await Promise.all([fetch(`${url}/healthz`), fetch(`http://127.0.0.1:${adminPort}/admin/state`, { headers: { authorization: `Bearer ${o.token}` } })]);
    if (!site.ok || !admin.ok) throw new Error(`site ${o.site} not ready`);
  });
  return { process: child, url, adminUrl: `http://127.0.0.1:${adminPort}`, client: new SiteClient({ site: o.site, url, token: o.token }) };
}
