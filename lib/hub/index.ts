// Hub client: downloads into the Hugging Face cache shared with Python, pushes folders in one commit.
export { resolveModelPath, downloadSnapshot, MODEL_FILES, fnmatchRegExp, type ResolveOptions, type ResolveProgress, type SnapshotInfo } from './resolve.js';
export { downloadFile, fileMetadata, type FileMetadata, type DownloadProgress } from './download.js';
export { push, createRepo, listFolder, type PushOptions, type PushResult } from './push.js';
export { buildModelCard, describeFolder, type ModelCardOptions } from './model-card.js';
export { assertNoPickleOnly, isPickleWeight, pickleOnlyWeights } from './pickle.js';
export { hubCacheDir, repoFolderName, RepoCache } from './cache-layout.js';
export { hubEndpoint, hubToken, type HubRequestOptions } from './http.js';
export { HubError, type HubErrorCode } from './errors.js';
