// One step of the schema. Its SQL runs inside the migration's transaction, so it must not BEGIN or COMMIT,
// and cannot switch foreign keys off (a table rebuild would need its own procedure).
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}
