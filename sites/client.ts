import {
  SiteError,
  type CreateDiskSpec,
  type DiskWriteOptions,
  type GuestHeartbeat,
  type GuestProbe,
  type GuestProbeResult,
  type Inventory,
  type JournalBatch,
  type PowerOnAnswer,
  type PowerOnOptions,
  type ReadJournalOptions,
  type ReconfigureSpec,
  type RegisterVmSpec,
  type RocvaSpec,
  type ShutdownOutcome,
  type SiteEvent,
  type SiteProvider,
  type VirtualDisk,
  type Vm,
} from './provider';
import { SiteHttpTransport, type SiteHttpAnswer } from './http-transport';
import { decodeJournalBatch, WRITE_FENCE_HEADER } from './wire';

export interface SiteClientOptions {
  site: string;
  /** e.g. http://127.0.0.1:9101 */
  url: string;
  token: string;
  /** Per request; a hung site must not hang an activity forever. */
  timeoutMs?: number;
}

/** The site provider over the simulated site's REST API; errors come back as typed SiteErrors. */
export class SiteClient implements SiteProvider {
  readonly site: string;

  private readonly transport: SiteHttpTransport;

  constructor(private readonly options: SiteClientOptions) {
    this.site = options.site;
    this.transport = new SiteHttpTransport(options.url);
  }

  private async call(method: string, path: string, init: { json?: unknown; binary?: Buffer; timeoutMs?: number; headers?: Record<string, string> } = {}): Promise<Buffer> {
    let answer: SiteHttpAnswer;
    try {
      answer = await this.transport.request({
        method,
        url: new URL(`${this.options.url}${path}`),
        headers: {
          authorization: `Bearer ${this.options.token}`,
          ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(init.binary ? { 'content-type': 'application/octet-stream' } : {}),
          ...init.headers,
        },
        ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
        ...(init.binary ? { body: init.binary } : {}),
        timeoutMs: init.timeoutMs ?? this.options.timeoutMs ?? 30_000,
      });
    } catch (error) {
      throw new SiteError('SiteUnavailable', `site ${this.site} at ${this.options.url} is unreachable: ${(error as Error).message}`, 503);
    }
    if (answer.status < 200 || answer.status > 299) {
      const text = answer.body.toString('utf8');
      let problem: { code?: string; detail?: string } = {};
      try {
        problem = JSON.parse(text) as typeof problem;
      } catch {
        problem = { detail: text };
      }
      throw new SiteError(problem.code ?? `Http${answer.status}`, problem.detail ?? `site ${this.site} answered ${answer.status}`, answer.status);
    }
    return answer.body;
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return JSON.parse((await this.call(method, path, body === undefined ? {} : { json: body })).toString('utf8')) as T;
  }

  private async done(method: string, path: string, body?: unknown): Promise<void> {
    await this.call(method, path, body === undefined ? {} : { json: body });
  }

  inventory = () => this.json<Inventory>('GET', '/api/inventory');
  listVms = () => this.json<Vm[]>('GET', '/api/vms');
  getVm = (name: string) => this.json<Vm>('GET', `/api/vms/${encodeURIComponent(name)}`);
  registerVm = ({ name, ...spec }: RegisterVmSpec) => this.json<Vm>('PUT', `/api/vms/${encodeURIComponent(name)}`, spec);
  unregisterVm = (name: string, options: { deleteDisks?: boolean } = {}) =>
    this.done('DELETE', `/api/vms/${encodeURIComponent(name)}${options.deleteDisks ? '?deleteDisks=true' : ''}`);
  reconfigureVm = (name: string, changes: ReconfigureSpec) => this.json<Vm>('PATCH', `/api/vms/${encodeURIComponent(name)}`, changes);
  powerOn = (name: string, options?: PowerOnOptions) => this.json<PowerOnAnswer>('POST', `/api/vms/${encodeURIComponent(name)}/power-on`, options);
  powerOff = (name: string) => this.json<Vm>('POST', `/api/vms/${encodeURIComponent(name)}/power-off`);

  async shutdownGuest(name: string, timeoutMs: number): Promise<ShutdownOutcome> {
    const answer = await this.call('POST', `/api/vms/${encodeURIComponent(name)}/guest-shutdown`, { json: { timeoutMs }, timeoutMs: timeoutMs + 30_000 });
    return (JSON.parse(answer.toString('utf8')) as { outcome: ShutdownOutcome }).outcome;
  }

  async guestHeartbeat(name: string): Promise<GuestHeartbeat> {
    return (await this.json<{ heartbeat: GuestHeartbeat }>('GET', `/api/vms/${encodeURIComponent(name)}/heartbeat`)).heartbeat;
  }

  probeGuest = (name: string, probe: GuestProbe) => this.json<GuestProbeResult>('POST', `/api/vms/${encodeURIComponent(name)}/probe`, probe);

  deployRocva = ({ name, ...spec }: RocvaSpec) => this.json<Vm>('PUT', `/api/appliances/${encodeURIComponent(name)}`, spec);
  destroyRocva = (name: string) => this.done('DELETE', `/api/appliances/${encodeURIComponent(name)}`);
  createDisk = ({ id, ...spec }: CreateDiskSpec) => this.json<VirtualDisk>('PUT', `/api/disks/${encodeURIComponent(id)}`, spec);
  listDisks = () => this.json<VirtualDisk[]>('GET', '/api/disks');
  getDisk = (id: string) => this.json<VirtualDisk>('GET', `/api/disks/${encodeURIComponent(id)}`);
  deleteDisk = (id: string) => this.done('DELETE', `/api/disks/${encodeURIComponent(id)}`);
  setDiskProtection = (id: string, isProtected: boolean) =>
    this.json<{ disk: VirtualDisk; journalSequence: number }>('PUT', `/api/disks/${encodeURIComponent(id)}/protection`, { protected: isProtected });

  async readDisk(diskId: string, offset: number, length: number): Promise<Buffer> {
    return this.call('GET', `/api/disks/${encodeURIComponent(diskId)}/data?offset=${offset}&length=${length}`);
  }

  allocatedChunks = (diskId: string, chunkBytes: number) =>
    this.json<number[]>('GET', `/api/disks/${encodeURIComponent(diskId)}/allocated-chunks?chunkBytes=${chunkBytes}`);

  async writeDisk(diskId: string, offset: number, data: Buffer, { fence }: DiskWriteOptions = {}): Promise<void> {
    await this.call('PUT', `/api/disks/${encodeURIComponent(diskId)}/data?offset=${offset}`, { binary: data, ...(fence === undefined ? {} : { headers: { [WRITE_FENCE_HEADER]: String(fence) } }) });
  }

  async readJournal({ afterSequence, vms, maxBytes, maxEntries, waitMs }: ReadJournalOptions): Promise<JournalBatch> {
    const timeoutMs = (waitMs ?? 0) + (this.options.timeoutMs ?? 30_000);
    return decodeJournalBatch(await this.call('POST', '/api/journal/read', { json: { afterSequence, vms, maxBytes, maxEntries, waitMs }, timeoutMs }));
  }

  trimJournal = (upToSequence: number, vms?: string[]) => this.done('POST', '/api/journal/trim', { upToSequence, ...(vms ? { vms } : {}) });
  events = (afterSequence = 0) => this.json<SiteEvent[]>('GET', `/api/events?after=${afterSequence}`);
}
