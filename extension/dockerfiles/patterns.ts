/** Which file names are Dockerfiles: `Dockerfile`, `Containerfile`, `*.Dockerfile`, `*.dockerfile`, `Dockerfile.*`. */
import * as path from 'node:path';

/** Glob for `workspace.findFiles` and file watchers. */
export const DOCKERFILE_GLOB = '**/{Dockerfile,Containerfile,*.Dockerfile,*.dockerfile,Dockerfile.*}';

const NAME = /^(?:Dockerfile|Containerfile|Dockerfile\..+|.+\.[Dd]ockerfile)$/;

export function isDockerfileName(fileName: string): boolean {
  const base = path.basename(fileName);
  // `Dockerfile.dockerignore` style companions are not Dockerfiles.
  return NAME.test(base) && !base.endsWith('.dockerignore');
}
