import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * Virtual disks as sparse files on a datastore folder: a 40 GiB disk costs only the blocks
 * written. File descriptors stay open between calls because disk I/O is the hot path.
 */
export class DiskFiles {
  private readonly open = new Map<string, number>();

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

  create(datastore: string, id: string, sizeBytes: number): void {
    const file = this.file(datastore, id);
    mkdirSync(path.dirname(file), { recursive: true });
    if (existsSync(file)) return;
    const fd = openSync(file, 'w');
    ftruncateSync(fd, sizeBytes);
    closeSync(fd);
  }

  remove(datastore: string, id: string): void {
    const key = `${datastore}/${id}`;
    const fd = this.open.get(key);
    if (fd !== undefined) closeSync(fd);
    this.open.delete(key);
    rmSync(this.file(datastore, id), { force: true });
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

  write(datastore: string, id: string, offset: number, data: Buffer): void {
    const fd = this.fd(datastore, id);
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done, data.length - done, offset + done);
  }

  closeAll(): void {
    for (const fd of this.open.values()) closeSync(fd);
    this.open.clear();
  }
}
