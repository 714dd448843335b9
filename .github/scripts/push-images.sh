#!/usr/bin/env bash
# Builds and pushes the project's images a stack file pins, each only when the registry does not
# have its tag yet (docs/ci.md, "The project's images"):
#   allixios:bootstrap.image          from bootstrap/Dockerfile
#   allixios:engines.<engine>.image   from databases/<engine>/image/Dockerfile
# A tag the registry has is never rebuilt: a changed image ships under a new tag in the stack file.
# Builds run from the repository root, their context. docker logs in once per registry host, as
# GITHUB_ACTOR with REGISTRY_TOKEN. The deploy workflow runs it before `pulumi up`:
#
#   bash .github/scripts/push-images.sh Pulumi.staging.yaml
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: push-images.sh <stack file>" >&2
  exit 2
fi
stack_name=$1
if [ ! -f "$stack_name" ]; then
  echo "::error title=Project images::no stack file $stack_name"
  exit 1
fi
stack_file=$(realpath "$stack_name")
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# One line per pinned image, tab-separated: title, config key, Dockerfile, image; the bootstrap's
# first, then the engines' in the stack file's order. Read with the project's yaml package; on an
# error, what it printed is the ::error line.
if ! pinned=$(STACK_FILE="$stack_file" node --input-type=module -e '
  import { readFileSync } from "node:fs";
  import YAML from "yaml";
  const config = YAML.parse(readFileSync(process.env.STACK_FILE, "utf8"))?.config ?? {};
  const images = [];
  const bootstrap = config["allixios:bootstrap"]?.image;
  if (bootstrap) images.push(["Bootstrap image", "allixios:bootstrap.image", "bootstrap/Dockerfile", bootstrap]);
  for (const [engine, settings] of Object.entries(config["allixios:engines"] ?? {})) {
    if (!settings?.image) continue;
    // The name becomes a path: the name of a folder of databases/, never one that leaves it.
    if (!/^[a-z][a-z0-9-]*$/.test(engine)) {
      console.log(`::error title=Engine image::allixios:engines.${engine}: not an engine name`);
      process.exit(1);
    }
    images.push([`${engine} image`, `allixios:engines.${engine}.image`, `databases/${engine}/image/Dockerfile`, settings.image]);
  }
  for (const image of images) console.log(image.map(String).join("\t"));'); then
  echo "$pinned"
  exit 1
fi
images=()
if [ -n "$pinned" ]; then mapfile -t images <<< "$pinned"; fi

engine_images=0
for line in "${images[@]}"; do
  if [[ $line == *$'\tallixios:engines.'* ]]; then engine_images=$((engine_images + 1)); fi
done
if [ "${#images[@]}" -eq "$engine_images" ]; then echo "$stack_name pins no bootstrap image: nothing to build"; fi
if [ "$engine_images" -eq 0 ]; then echo "$stack_name pins no engine image: nothing to build"; fi

# Every Dockerfile first: a missing one stops the deploy before anything is pushed.
missing=0
for line in "${images[@]}"; do
  IFS=$'\t' read -r title key dockerfile image <<< "$line"
  if [ ! -f "$dockerfile" ]; then
    echo "::error title=$title::$stack_name sets $key ($image), but $dockerfile, which builds it, does not exist"
    missing=1
  fi
done
if [ "$missing" -ne 0 ]; then exit 1; fi

declare -A logged_in=()
for line in "${images[@]}"; do
  IFS=$'\t' read -r title key dockerfile image <<< "$line"
  host=${image%%/*}
  if [ -z "${logged_in[$host]:-}" ]; then
    echo "${REGISTRY_TOKEN:?REGISTRY_TOKEN: no token to log in to $host with}" | docker login "$host" --username "${GITHUB_ACTOR:?GITHUB_ACTOR: no user to log in to $host as}" --password-stdin
    logged_in[$host]=1
  fi
  if inspect=$(docker manifest inspect "$image" 2>&1); then
    echo "$image is in the registry already: not rebuilt"
  elif grep -qiE 'no such manifest|manifest unknown|not found' <<< "$inspect"; then
    echo "$image ($key) is not in the registry: building it from $dockerfile"
    docker build --file "$dockerfile" --tag "$image" .
    docker push "$image"
  else
    # Neither there nor surely absent: pushing now could overwrite a tag in use.
    echo "::error title=$title::cannot tell whether $image exists: $inspect"
    exit 1
  fi
done
