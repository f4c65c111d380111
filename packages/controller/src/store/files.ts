// The files of VMs on hosts, and the controller-side backups of them.
import { StoreError } from './errors.js';
import { PENDING_COLUMNS, toPending, type PendingRow } from './pending-row.js';
import { deleteWhereIn, selectWhereIn, type Context } from './support.js';
import type { BackupFile, FileType, StoreReads, StoreWrites, VmHostFile } from './types.js';

interface FileRow {
  uuid: string;
  vm_uuid: string;
  host_uuid: string;
  type: FileType;
  path: string;
  sha256: string;
  size: number;
  last_sync_at: number;
}
const FILE_COLUMNS = 'uuid, vm_uuid, host_uuid, type, path, sha256, size, last_sync_at';
const FILE = `SELECT ${FILE_COLUMNS} FROM vm_host_files`;
const toFile = (r: FileRow): VmHostFile => ({
  uuid: r.uuid,
  vmUuid: r.vm_uuid,
  hostUuid: r.host_uuid,
  type: r.type,
  path: r.path,
  sha256: r.sha256,
  size: r.size,
  lastSyncAt: r.last_sync_at,
});

interface BackupRow {
  uuid: string;
  vm_uuid: string;
  type: FileType;
  content: Buffer;
  sha256: string;
  updated_at: number;
}
const BACKUP_COLUMNS = 'uuid, vm_uuid, type, content, sha256, updated_at';
const BACKUP = `SELECT ${BACKUP_COLUMNS} FROM vm_host_backup_files`;
const toBackup = (r: BackupRow): BackupFile => ({
  uuid: r.uuid,
  vmUuid: r.vm_uuid,
  type: r.type,
  content: r.content,
  sha256: r.sha256,
  updatedAt: r.updated_at,
});

const typeFilter = (type: FileType | undefined): string => (type === undefined ? '' : 'AND type = $type');

export function fileReads({ sql }: Context) {
  return {
    listFilesByVm: async (vmUuid, type) => {
      const rows = await sql.all<FileRow>(
        `${FILE} WHERE vm_uuid = $vmUuid ${typeFilter(type)} ORDER BY host_uuid, type`,
        {
          vmUuid,
          ...(type === undefined ? {} : { type }),
        },
      );
      return rows.map(toFile);
    },
    listFilesByVms: async (vmUuids) =>
      (await selectWhereIn<FileRow>(sql, FILE, 'vm_uuid', vmUuids, 'ORDER BY vm_uuid, host_uuid, type')).map(toFile),
    listBackupsByVms: async (vmUuids) =>
      (await selectWhereIn<BackupRow>(sql, BACKUP, 'vm_uuid', vmUuids, 'ORDER BY vm_uuid, type')).map(toBackup),
    listFilesByHost: async (hostUuid) =>
      (await sql.all<FileRow>(`${FILE} WHERE host_uuid = $hostUuid ORDER BY path`, { hostUuid })).map(toFile),
    listBackupsByVm: async (vmUuid, type) => {
      const rows = await sql.all<BackupRow>(`${BACKUP} WHERE vm_uuid = $vmUuid ${typeFilter(type)} ORDER BY type`, {
        vmUuid,
        ...(type === undefined ? {} : { type }),
      });
      return rows.map(toBackup);
    },
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
  return {
    upsertFile: async (file) => {
      const previous = await fileOf(file.vmUuid, file.hostUuid, file.type);
      const [stored] = await sql.all<FileRow>(
        `INSERT INTO vm_host_files (uuid, vm_uuid, host_uuid, type, path, sha256, size, last_sync_at)
         VALUES ($uuid, $vmUuid, $hostUuid, $type, $path, $sha256, $size, $lastSyncAt)
         ON CONFLICT (vm_uuid, host_uuid, type) DO UPDATE SET
           path = excluded.path, sha256 = excluded.sha256, size = excluded.size, last_sync_at = excluded.last_sync_at
         RETURNING ${FILE_COLUMNS}`,
        {
          uuid: file.uuid,
          vmUuid: file.vmUuid,
          hostUuid: file.hostUuid,
          type: file.type,
          path: file.path,
          sha256: file.sha256,
          size: file.size,
          lastSyncAt: file.lastSyncAt,
        },
      );
      if (stored === undefined) throw new StoreError('io', `file row of VM ${file.vmUuid} was not stored`);
      // After the upsert, so a refused upsert leaves the pending deletion in place. Same transaction as the upsert:
      // a retry that read the deletion before can no longer confirm it, and nothing will delete the new file.
      const [cancelled] = await sql.all<PendingRow>(
        `DELETE FROM pending_deletions WHERE host_uuid = $hostUuid AND path = $path RETURNING ${PENDING_COLUMNS}`,
        { hostUuid: file.hostUuid, path: file.path },
      );
      return { file: toFile(stored), previous, cancelled: cancelled === undefined ? null : toPending(cancelled) };
    },
    deleteFiles: (uuids) => deleteWhereIn(sql, 'vm_host_files', 'uuid', uuids),
    upsertBackup: async ({ uuid, vmUuid, type, content, sha256 }) => {
      const [row] = await sql.all<BackupRow>(
        `INSERT INTO vm_host_backup_files (uuid, vm_uuid, type, content, sha256, updated_at)
         VALUES ($uuid, $vmUuid, $type, $content, $sha256, $updatedAt)
         ON CONFLICT (vm_uuid, type) DO UPDATE SET
           content = excluded.content, sha256 = excluded.sha256, updated_at = excluded.updated_at
         RETURNING ${BACKUP_COLUMNS}`,
        { uuid, vmUuid, type, content, sha256, updatedAt: now() },
      );
      if (row === undefined) throw new StoreError('io', `backup of VM ${vmUuid} was not stored`);
      return toBackup(row);
    },
    deleteBackups: (uuids) => deleteWhereIn(sql, 'vm_host_backup_files', 'uuid', uuids),
  } satisfies Partial<StoreWrites>;
}
