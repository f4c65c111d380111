// The states of VMs on hosts, the controller-side backups of them, and the paths hostfiles is answerable for.
import { StoreError } from './errors.js';
import { PENDING_COLUMNS, toPending, type PendingRow } from './pending-row.js';
import { readKeepGenerations } from './settings.js';
import { deleteWhereIn, selectWhereIn, type Context } from './support.js';
import { FILE_TYPES } from '@hostfiles/shared';
import type {
  BackupEntry,
  BackupFile,
  ContentStorage,
  FileType,
  GenerationSource,
  NewBackupFile,
  OwnedPath,
  StateKind,
  StoreReads,
  StoreWrites,
  VmHostFile,
} from './types.js';

interface FileRow {
  uuid: string;
  vm_uuid: string;
  host_uuid: string;
  type: FileType;
  path: string;
  kind: StateKind;
  sha256: string;
  size: number;
  last_sync_at: number;
}
const FILE_COLUMNS = 'uuid, vm_uuid, host_uuid, type, path, kind, sha256, size, last_sync_at';
const FILE = `SELECT ${FILE_COLUMNS} FROM vm_host_files`;
const toFile = (r: FileRow): VmHostFile => ({
  uuid: r.uuid,
  vmUuid: r.vm_uuid,
  hostUuid: r.host_uuid,
  type: r.type,
  path: r.path,
  kind: r.kind,
  sha256: r.sha256,
  size: r.size,
  lastSyncAt: r.last_sync_at,
});

interface BackupRow {
  uuid: string;
  vm_uuid: string;
  type: FileType;
  generation: number;
  kind: StateKind;
  sha256: string;
  size: number;
  source: GenerationSource;
  host_uuid: string | null;
  captured_at: number;
}
const BACKUP_COLUMNS = 'uuid, vm_uuid, type, generation, kind, sha256, size, source, host_uuid, captured_at';
const BACKUP = `SELECT ${BACKUP_COLUMNS} FROM vm_host_backup_files b`;
/** Only the newest generation of each (vm, type): the VM's backup. */
const NEWEST = `generation = (
  SELECT max(g.generation) FROM vm_host_backup_files g WHERE g.vm_uuid = b.vm_uuid AND g.type = b.type)`;
const toBackup = (r: BackupRow): BackupFile => ({
  uuid: r.uuid,
  vmUuid: r.vm_uuid,
  type: r.type,
  generation: r.generation,
  kind: r.kind,
  sha256: r.sha256,
  size: r.size,
  source: r.source,
  hostUuid: r.host_uuid,
  capturedAt: r.captured_at,
});

interface EntryRow {
  path: string;
  content: Buffer;
  encoding: ContentStorage;
  sha256: string;
  size: number;
}

interface OwnedRow {
  host_uuid: string;
  path: string;
  type: FileType;
  vm_uuid: string;
  created_at: number;
}

const typeFilter = (type: FileType | undefined): string => (type === undefined ? '' : 'AND type = $type');

export function fileReads({ sql }: Context) {
  return {
    listFilesByVm: async (vmUuid, type) => {
      const rows = await sql.all<FileRow>(
        `${FILE} WHERE vm_uuid = $vmUuid ${typeFilter(type)} ORDER BY host_uuid, type`,
        { vmUuid, ...(type === undefined ? {} : { type }) },
      );
      return rows.map(toFile);
    },
    listFilesByVms: async (vmUuids) =>
      (await selectWhereIn<FileRow>(sql, FILE, 'vm_uuid', vmUuids, 'ORDER BY vm_uuid, host_uuid, type')).map(toFile),
    listBackupsByVms: async (vmUuids) =>
      (await selectWhereIn<BackupRow>(sql, BACKUP, 'vm_uuid', vmUuids, `AND ${NEWEST} ORDER BY vm_uuid, type`)).map(
        toBackup,
      ),
    listFilesByHost: async (hostUuid) =>
      (await sql.all<FileRow>(`${FILE} WHERE host_uuid = $hostUuid ORDER BY path`, { hostUuid })).map(toFile),
    listBackupsByVm: async (vmUuid, type) => {
      const rows = await sql.all<BackupRow>(
        `${BACKUP} WHERE vm_uuid = $vmUuid ${typeFilter(type)} AND ${NEWEST} ORDER BY type`,
        {
          vmUuid,
          ...(type === undefined ? {} : { type }),
        },
      );
      return rows.map(toBackup);
    },
    listGenerations: async (vmUuid, type) => {
      const rows = await sql.all<BackupRow>(
        `${BACKUP} WHERE vm_uuid = $vmUuid ${typeFilter(type)} ORDER BY type, generation DESC`,
        { vmUuid, ...(type === undefined ? {} : { type }) },
      );
      return rows.map(toBackup);
    },
    getGeneration: async (vmUuid, type, generation) => {
      const row = await sql.get<BackupRow>(
        `${BACKUP} WHERE vm_uuid = $vmUuid AND type = $type AND generation = $generation`,
        { vmUuid, type, generation },
      );
      return row === undefined ? null : toBackup(row);
    },
    listBackupEntries: async (backupUuid) =>
      sql.all<EntryRow>(
        `SELECT path, content, encoding, sha256, size FROM vm_host_backup_entries
         WHERE backup_uuid = $backupUuid ORDER BY path`,
        { backupUuid },
      ),
    listOwnedPaths: async (hostUuid) =>
      (
        await sql.all<OwnedRow>(
          'SELECT host_uuid, path, type, vm_uuid, created_at FROM owned_paths WHERE host_uuid = $hostUuid ORDER BY path',
          { hostUuid },
        )
      ).map((r): OwnedPath => ({
        hostUuid: r.host_uuid,
        path: r.path,
        type: r.type,
        vmUuid: r.vm_uuid,
        createdAt: r.created_at,
      })),
  } satisfies Partial<StoreReads>;
}

export function fileWrites({ sql, now }: Context) {
  const fileOf = async (vmUuid: string, hostUuid: string, type: FileType): Promise<VmHostFile | null> => {
    const row = await sql.get<FileRow>(`${FILE} WHERE vm_uuid = $vmUuid AND host_uuid = $hostUuid AND type = $type`, {
      vmUuid,
      hostUuid,
      type,
    });
    return row === undefined ? null : toFile(row);
  };
  const addOwnedPaths: StoreWrites['addOwnedPaths'] = async (rows) => {
    const createdAt = now();
    for (const { hostUuid, path, type, vmUuid } of rows) {
      await sql.run(
        `INSERT INTO owned_paths (host_uuid, path, type, vm_uuid, created_at)
         VALUES ($hostUuid, $path, $type, $vmUuid, $createdAt) ON CONFLICT (host_uuid, path) DO NOTHING`,
        { hostUuid, path, type, vmUuid, createdAt },
      );
    }
  };
  return {
    upsertFile: async (file) => {
      const previous = await fileOf(file.vmUuid, file.hostUuid, file.type);
      const [stored] = await sql.all<FileRow>(
        `INSERT INTO vm_host_files (uuid, vm_uuid, host_uuid, type, path, kind, sha256, size, last_sync_at)
         VALUES ($uuid, $vmUuid, $hostUuid, $type, $path, $kind, $sha256, $size, $lastSyncAt)
         ON CONFLICT (vm_uuid, host_uuid, type) DO UPDATE SET
           path = excluded.path, kind = excluded.kind, sha256 = excluded.sha256, size = excluded.size,
           last_sync_at = excluded.last_sync_at
         RETURNING ${FILE_COLUMNS}`,
        {
          uuid: file.uuid,
          vmUuid: file.vmUuid,
          hostUuid: file.hostUuid,
          type: file.type,
          path: file.path,
          kind: file.kind,
          sha256: file.sha256,
          size: file.size,
          lastSyncAt: file.lastSyncAt,
        },
      );
      if (stored === undefined) throw new StoreError('io', `file row of VM ${file.vmUuid} was not stored`);
      // After the upsert, so a refused upsert leaves the pending deletions in place. Same transaction as the upsert:
      // a retry that read a deletion before can no longer confirm it, and nothing will delete the new state. Those
      // below the path go too: the state written there replaced whatever they were to delete.
      const cancelled = await sql.all<PendingRow>(
        `DELETE FROM pending_deletions
         WHERE host_uuid = $hostUuid AND (path = $path OR substr(path, 1, length($path) + 1) = $path || '/')
         RETURNING ${PENDING_COLUMNS}`,
        { hostUuid: file.hostUuid, path: file.path },
      );
      await addOwnedPaths([file]);
      return { file: toFile(stored), previous, cancelled: cancelled.map(toPending) };
    },
    deleteFiles: (uuids) => deleteWhereIn(sql, 'vm_host_files', 'uuid', uuids),
    recordGeneration: async (backup) => {
      const { vmUuid, type } = backup;
      const newest = await sql.get<BackupRow>(
        `${BACKUP} WHERE vm_uuid = $vmUuid AND type = $type ORDER BY generation DESC LIMIT 1`,
        { vmUuid, type },
      );
      const same = newest !== undefined && newest.sha256 === backup.sha256 && newest.kind === backup.kind;
      const stored = same ? newest : await insertGeneration(sql, backup, now());
      // The database's setting, read in this transaction: every process and flow prunes to the same N.
      const pruned = await prune(sql, vmUuid, type, await readKeepGenerations(sql));
      return { backup: toBackup(stored), created: !same, pruned };
    },
    deleteGenerations: async (vmUuid, types) => {
      let removed = 0;
      for (const type of types ?? FILE_TYPES) {
        removed += (
          await sql.run('DELETE FROM vm_host_backup_files WHERE vm_uuid = $vmUuid AND type = $type', { vmUuid, type })
        ).changes;
      }
      return removed;
    },
    deleteBackups: (uuids) => deleteWhereIn(sql, 'vm_host_backup_files', 'uuid', uuids),
    addOwnedPaths,
    removeOwnedPaths: async (hostUuid, paths) => {
      let removed = 0;
      for (const path of paths) {
        removed += (
          await sql.run('DELETE FROM owned_paths WHERE host_uuid = $hostUuid AND path = $path', { hostUuid, path })
        ).changes;
      }
      return removed;
    },
  } satisfies Partial<StoreWrites>;
}

/** The next number of the (vm, type) counter, then the generation and its entries. */
async function insertGeneration(sql: Context['sql'], backup: NewBackupFile, capturedAt: number): Promise<BackupRow> {
  const { uuid, vmUuid, type, kind, sha256, size, source, hostUuid, entries } = backup;
  const [counter] = await sql.all<{ last_generation: number }>(
    `INSERT INTO vm_generation_counters (vm_uuid, type, last_generation) VALUES ($vmUuid, $type, 1)
     ON CONFLICT (vm_uuid, type) DO UPDATE SET last_generation = vm_generation_counters.last_generation + 1
     RETURNING last_generation`,
    { vmUuid, type },
  );
  if (counter === undefined) throw new StoreError('io', `no generation number was given to VM ${vmUuid}`);
  const [row] = await sql.all<BackupRow>(
    `INSERT INTO vm_host_backup_files (${BACKUP_COLUMNS})
     VALUES ($uuid, $vmUuid, $type, $generation, $kind, $sha256, $size, $source, $hostUuid, $capturedAt)
     RETURNING ${BACKUP_COLUMNS}`,
    { uuid, vmUuid, type, generation: counter.last_generation, kind, sha256, size, source, hostUuid, capturedAt },
  );
  if (row === undefined) throw new StoreError('io', `backup of VM ${vmUuid} was not stored`);
  for (const entry of entries) await insertEntry(sql, row.uuid, entry);
  return row;
}

/** Drops the generations of (vm, type) older than the newest `keep`; answers their numbers, oldest first. */
async function prune(sql: Context['sql'], vmUuid: string, type: FileType, keep: number): Promise<number[]> {
  const rows = await sql.all<{ generation: number }>(
    `SELECT generation FROM vm_host_backup_files WHERE vm_uuid = $vmUuid AND type = $type
     ORDER BY generation DESC`,
    { vmUuid, type },
  );
  const dropped = rows.slice(keep).map((r) => r.generation);
  if (dropped.length === 0) return [];
  const oldestKept = rows[keep - 1]?.generation ?? 0;
  await sql.run(
    'DELETE FROM vm_host_backup_files WHERE vm_uuid = $vmUuid AND type = $type AND generation < $oldestKept',
    { vmUuid, type, oldestKept },
  );
  return dropped.reverse();
}

async function insertEntry(sql: Context['sql'], backupUuid: string, entry: BackupEntry): Promise<void> {
  await sql.run(
    `INSERT INTO vm_host_backup_entries (backup_uuid, path, content, encoding, sha256, size)
     VALUES ($backupUuid, $path, $content, $encoding, $sha256, $size)`,
    {
      backupUuid,
      path: entry.path,
      content: entry.content,
      encoding: entry.encoding,
      sha256: entry.sha256,
      size: entry.size,
    },
  );
}
