// The entry that loads no other module of note (no zod, no node:net): what the controller's command table needs
// before it knows which command runs, so that its --help starts about as fast as node itself. The main entry exports
// all of it too.
export { FILE_TYPES, type FileType } from './protocol/file-types.js';
