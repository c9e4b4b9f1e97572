import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * Virtual disks as sparse files on a datastore folder: a 40 GiB disk costs only the blocks
 * written (thin provisioning), and a datastore's used space is the sum of what its files have
 * allocated. File descriptors stay open between calls because disk I/O is the hot path.
 */
export class DiskFiles {
  private readonly open = new Map<string, number>();
  /** Per datastore, the bytes each disk file has allocated, read from the files once and kept up to date by each write. */
  private readonly allocated = new Map<string, Allocation>();

  constructor(private readonly root: string) {}

  private file(datastore: string, id: string): string {
    return path.join(this.root, 'datastores', datastore, `${id}.img`);
  }

  private fd(datastore: string, id: string): number {
    const key = `${datastore}/${id}`;
    let fd = this.open.get(key);
    if (fd === undefined) {
      fd = openSync(this.file(datastore, id), 'r+');
      this.open.set(key, fd);
    }
    return fd;
  }

  private allocationOf(datastore: string): Allocation {
    let allocation = this.allocated.get(datastore);
    if (!allocation) {
      const folder = path.join(this.root, 'datastores', datastore);
      const names = existsSync(folder) ? readdirSync(folder).filter((name) => name.endsWith('.img')) : [];
      allocation = new Allocation(names.map((name) => [name.slice(0, -'.img'.length), statSync(path.join(folder, name)).blocks * 512]));
      this.allocated.set(datastore, allocation);
    }
    return allocation;
  }

  /** What the datastore's disk files take on the file system. */
  usedBytes(datastore: string): number {
    return this.allocationOf(datastore).total;
  }

  create(datastore: string, id: string, sizeBytes: number): void {
    const file = this.file(datastore, id);
    mkdirSync(path.dirname(file), { recursive: true });
    if (existsSync(file)) return;
    const fd = openSync(file, 'w');
    ftruncateSync(fd, sizeBytes);
    this.allocationOf(datastore).set(id, fstatSync(fd).blocks * 512);
    closeSync(fd);
  }

  remove(datastore: string, id: string): void {
    const key = `${datastore}/${id}`;
    const fd = this.open.get(key);
    if (fd !== undefined) closeSync(fd);
    this.open.delete(key);
    rmSync(this.file(datastore, id), { force: true });
    this.allocationOf(datastore).delete(id);
  }

  read(datastore: string, id: string, offset: number, length: number): Buffer {
    const buffer = Buffer.alloc(length);
    const fd = this.fd(datastore, id);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, buffer, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return buffer;
  }

  /**
   * The offsets of the `chunkBytes` chunks holding a non-zero byte. A file with no block allocated
   * has none; otherwise each chunk is read here, which costs far less than sending its zeros. Read
   * 64 MiB at a time between turns of the event loop, so that scanning a large disk does not stop
   * the site answering; a disk removed meanwhile ends the scan with ENOENT.
   */
  async nonZeroChunks(datastore: string, id: string, sizeBytes: number, chunkBytes: number): Promise<number[]> {
    if (fstatSync(this.fd(datastore, id)).blocks === 0) return [];
    const chunk = Buffer.alloc(chunkBytes);
    const zeros = Buffer.alloc(chunkBytes);
    const found: number[] = [];
    const chunksPerTurn = Math.max(1, Math.floor((64 * 1024 * 1024) / chunkBytes));
    for (let offset = 0; offset < sizeBytes; ) {
      const fd = this.fd(datastore, id);
      for (let i = 0; i < chunksPerTurn && offset < sizeBytes; i++, offset += chunkBytes) {
        const n = readSync(fd, chunk, 0, Math.min(chunkBytes, sizeBytes - offset), offset);
        if (!chunk.subarray(0, n).equals(zeros.subarray(0, n))) found.push(offset);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    return found;
  }

  write(datastore: string, id: string, offset: number, data: Buffer): void {
    const fd = this.fd(datastore, id);
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done, data.length - done, offset + done);
    this.allocationOf(datastore).set(id, fstatSync(fd).blocks * 512);
  }

  closeAll(): void {
    for (const fd of this.open.values()) closeSync(fd);
    this.open.clear();
  }
}

/** The bytes each disk file of a datastore has allocated, and their sum. */
class Allocation {
  private readonly files: Map<string, number>;
  total = 0;

  constructor(files: Array<[string, number]>) {
    this.files = new Map(files);
    for (const bytes of this.files.values()) this.total += bytes;
  }

  set(id: string, bytes: number): void {
    this.total += bytes - (this.files.get(id) ?? 0);
    this.files.set(id, bytes);
  }

  delete(id: string): void {
    this.total -= this.files.get(id) ?? 0;
    this.files.delete(id);
  }
}
