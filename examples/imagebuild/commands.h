/*
 * The commands of `imagebuild`: one line each. A new command group is a
 * cmd_<group>.c defining `int cmd_<name>(ib_cli *cli, int argc, char **argv)`
 * plus one line here and its file in meson.build.
 *
 * IB_COMMAND(name, "usage", "summary")
 */
IB_COMMAND(import, "import [-c CHANGE]... [-m MESSAGE] FILE|- [NAME]", "Import a root filesystem tarball as an image")
IB_COMMAND(images, "images [-q] [-a] [REPOSITORY[:TAG]]", "List images")
IB_COMMAND(inspect, "inspect NAME...", "Show an image's details as JSON")
IB_COMMAND(history, "history [--no-trunc] NAME", "Show the history of an image")
IB_COMMAND(tag, "tag SOURCE TARGET", "Give an image a new name")
IB_COMMAND(rmi, "rmi [-f] NAME...", "Remove images")
IB_COMMAND(save, "save [--format oci|oci-archive|docker-archive] [--ref-name TAG] [-o PATH] NAME...", "Save images to an OCI layout, OCI archive or docker-archive")
IB_COMMAND(load, "load [--repository REPO] [-q] [-i PATH|-]", "Load images from an OCI layout, OCI archive or docker-archive")
IB_COMMAND(prune, "prune [--blobs-only]", "Remove untagged images, every blob nothing references, unpacked layers no image uses and what killed processes left (--blobs-only: blobs only)")
IB_COMMAND(fsck, "fsck [--full]", "Verify every blob and reference of the store (--full: also decompress every layer variant)")
IB_COMMAND(build, "build [-t NAME]... [-f FILE|-] [--build-arg K=V]... [--target STAGE] [--no-cache] [--iidfile FILE] [--isolation NAME] [--snapshotter NAME] [--network host|none] [--pull] [--secret id=ID,src=FILE]... [--allow ENTITLEMENT]... [--dry-run] [--check] [-q] CONTEXT", "Build an image from a Dockerfile (pulling missing base images)")
IB_COMMAND(run, "run [--name NAME] [-i] [-t] [--rm] [-e K=V]... [-u USER] [-w DIR] [--entrypoint CMD] [--network host|none] [--isolation NAME] [--snapshotter NAME] IMAGE [COMMAND [ARG...]]", "Run a command in a new container")
IB_COMMAND(ps, "ps [-a] [-q]", "List containers")
IB_COMMAND(rm, "rm NAME...", "Remove containers")
IB_COMMAND(commit, "commit [-m MESSAGE] [-a AUTHOR] [-c CHANGE]... CONTAINER [NAME]", "Make a new image of a container's changes")
IB_COMMAND(exec, "exec [-i] [-t] [-e K=V]... [-u USER] [-w DIR] [--network host|none] [--isolation NAME] CONTAINER COMMAND [ARG...]", "Run a command in an existing container (its changes persist)")
IB_COMMAND(push, "push [--insecure] [--tls-ca FILE] [-q] NAME [DEST]", "Push an image to a registry")
IB_COMMAND(pull, "pull [--insecure] [--tls-ca FILE] [-q] REF", "Pull an image from a registry")
IB_COMMAND(login, "login [-u USER] [-p PASSWORD|--password-stdin] [--insecure] [--tls-ca FILE] [HOST]", "Log in to a registry (Docker's config.json)")
IB_COMMAND(logout, "logout [HOST]", "Log out from a registry")
IB_COMMAND(init, "init [--language LANG] [--language-version VERSION] [--port PORT] [--cmd COMMAND] [--package-manager PM] [--force] [DIR]", "Write a Dockerfile, .dockerignore and compose.yaml for a project (as docker init)")
