import { createCipheriv, createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { SiteError } from './provider';
import type { SimulatedSite } from './simulated/site';

/**
 * A guest workload: writes to the disks of running protected VMs at a set rate and pattern,
 * through the site's journaled write path. Every write's content is derived from (seed, write
 * number), and the workload keeps its own record (a JSON line per write), so that any disk can
 * be recomputed as it was at any journal position or instant and compared byte for byte.
 */
export type WorkloadPattern = 'sequential' | 'random' | 'hotspot';

export interface WorkloadSettings {
  writesPerSecond: number;
  blockSize: number;
  /** Writes of `blockSize` times a power of two up to this many bytes, each size as often; default: `blockSize` only. */
  maxBlockSize?: number;
  pattern: WorkloadPattern;
  seed: string;
  /** Limit to these VMs; default every running VM with a protected disk. */
  vms?: string[];
}

export interface WorkloadWrite {
  seed: string;
  /** Write number: with the seed, it determines the bytes. */
  n: number;
  sequence: number;
  at: number;
  vm: string;
  diskId: string;
  offset: number;
  length: number;
}

/** The bytes of write `n`: an AES-256-CTR keystream keyed by (seed, n), so that 20 MB/s of large writes cost little CPU. */
export function blockContent(seed: string, n: number, length: number): Buffer {
  const key = createHash('sha256').update(`${seed}:${n}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

export function readWorkloadRecord(file: string): WorkloadWrite[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as WorkloadWrite);
}

/**
 * What a disk holds after the recorded writes up to a journal position (inclusive) or an instant
 * (epoch ms, inclusive), starting from the zeros of a new sparse disk.
 */
export function expectedDiskContent(
  record: WorkloadWrite[],
  diskId: string,
  sizeBytes: number,
  upTo: { sequence: number } | { instant: number },
): Buffer {
  const image = Buffer.alloc(sizeBytes);
  for (const w of record) {
    if (w.diskId !== diskId) continue;
    if ('sequence' in upTo ? w.sequence > upTo.sequence : w.at > upTo.instant) continue;
    blockContent(w.seed, w.n, w.length).copy(image, w.offset);
  }
  return image;
}

/**
 * A stretch of a domain's life at one site: the writes of that site's workload with journal
 * positions after `after` and up to `upTo` (inclusive; absent: every one since). Journal positions
 * are the site's own, so a domain that failed over and back is a list of these.
 */
export interface WritePeriod {
  site: string;
  after: number;
  upTo?: number;
}

/**
 * What a disk holds after the writes of each period in turn (the primary's up to a failover, then
 * the recovery site's up to the failback, ...), starting from the zeros of a new sparse disk.
 */
export function diskContentAfter(records: (site: string) => WorkloadWrite[], periods: WritePeriod[], diskId: string, sizeBytes: number): Buffer {
  const image = Buffer.alloc(sizeBytes);
  for (const { site, after, upTo } of periods) {
    for (const w of records(site)) {
      if (w.diskId !== diskId || w.sequence <= after || (upTo !== undefined && w.sequence > upTo)) continue;
      blockContent(w.seed, w.n, w.length).copy(image, w.offset);
    }
  }
  return image;
}

/** The length of write `n`: `blockSize` times a power of two up to `maxBlockSize`, derived from the seed like its bytes. */
export function writeLength(settings: WorkloadSettings, n: number): number {
  const sizes = Math.max(1, Math.floor(Math.log2((settings.maxBlockSize ?? settings.blockSize) / settings.blockSize)) + 1);
  if (sizes === 1) return settings.blockSize;
  return settings.blockSize * 2 ** (createHash('sha256').update(`${settings.seed}:length:${n}`).digest().readUInt32BE(0) % sizes);
}

interface WorkloadTarget {
  vm: string;
  diskId: string;
  sizeBytes: number;
}

export class Workload {
  private timer: NodeJS.Timeout | undefined;
  private settings: WorkloadSettings | undefined;
  private n: number;
  private cursor = new Map<string, number>();
  private started = 0;
  private issued = 0;
  private listed: { changes: number; targets: Promise<WorkloadTarget[]> } | undefined;

  constructor(
    private readonly site: SimulatedSite,
    private readonly recordFile: string,
  ) {
    this.n = readWorkloadRecord(recordFile).reduce((max, w) => Math.max(max, w.n), 0);
  }

  status() {
    return { running: this.timer !== undefined, settings: this.settings ?? null, writes: this.n, recordFile: this.recordFile };
  }

  start(settings: WorkloadSettings): void {
    this.stop();
    this.settings = settings;
    this.listed = undefined;
    this.started = Date.now();
    this.issued = 0;
    this.timer = setInterval(() => void this.tick(), 20);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * The disks written to, listed again only after the site changed a VM or disk: listing (and
   * sorting) every VM at each tick, 50 a second, cost a site of 10,000 VMs more CPU than the
   * failover the benchmarks measured beside it.
   */
  private targets(): Promise<WorkloadTarget[]> {
    const changes = this.site.changes;
    if (this.listed?.changes !== changes) {
      const targets = this.listTargets();
      targets.catch(() => {
        if (this.listed?.targets === targets) this.listed = undefined;
      });
      this.listed = { changes, targets };
    }
    return this.listed.targets;
  }

  private async listTargets(): Promise<WorkloadTarget[]> {
    const vms = (await this.site.listVms()).filter((vm) => vm.powerState === 'poweredOn' && vm.kind === 'vm' && (!this.settings?.vms || this.settings.vms.includes(vm.name)));
    const disks = await Promise.all(vms.flatMap((vm) => vm.diskIds.map(async (id) => ({ vm: vm.name, disk: await this.site.getDisk(id) }))));
    return disks.filter((d) => d.disk.protected).map((d) => ({ vm: d.vm, diskId: d.disk.id, sizeBytes: d.disk.sizeBytes }));
  }

  private async tick(): Promise<void> {
    const settings = this.settings;
    if (!settings) return;
    const due = Math.floor(((Date.now() - this.started) / 1000) * settings.writesPerSecond) - this.issued;
    if (due <= 0) return;
    this.issued += due;
    const targets = await this.targets();
    if (targets.length === 0) return;
    for (let i = 0; i < due; i++) {
      const n = ++this.n;
      const target = targets[n % targets.length];
      const length = Math.min(writeLength(settings, n), target.sizeBytes - (target.sizeBytes % settings.blockSize));
      const slots = Math.floor((target.sizeBytes - length) / settings.blockSize) + 1;
      const offset = this.nextBlock(settings, target.diskId, slots, n) * settings.blockSize;
      const written = this.writeUnlessFull(target.diskId, offset, blockContent(settings.seed, n, length));
      if (!written) {
        this.n = n - 1;
        this.issued -= due - i;
        return;
      }
      const { sequence, timestamp } = written;
      // Recorded right after each write: a killed site loses at most the one write in flight from its record.
      const entry: WorkloadWrite = { seed: settings.seed, n, sequence, at: timestamp, vm: target.vm, diskId: target.diskId, offset, length };
      appendFileSync(this.recordFile, `${JSON.stringify(entry)}\n`);
    }
  }

  /** A guest whose datastore is full stalls, as a VM pauses on one: undefined, and its writes wait for space. */
  private writeUnlessFull(diskId: string, offset: number, data: Buffer): { sequence: number; timestamp: number } | undefined {
    try {
      return this.site.guestWrite(diskId, offset, data);
    } catch (error) {
      if (error instanceof SiteError && error.code === 'DatastoreFull') return undefined;
      throw error;
    }
  }

  private nextBlock(settings: WorkloadSettings, diskId: string, blocks: number, n: number): number {
    const random = createHash('sha256').update(`${settings.seed}:offset:${n}`).digest().readUInt32BE(0);
    if (settings.pattern === 'sequential') {
      const next = ((this.cursor.get(diskId) ?? -1) + 1) % blocks;
      this.cursor.set(diskId, next);
      return next;
    }
    if (settings.pattern === 'hotspot' && random % 10 < 8) return random % Math.max(1, Math.floor(blocks / 10));
    return random % blocks;
  }
}
