/*
 * The commands of `imagebuild`: one line each. A new command group is a
 * cmd_<group>.c defining `int cmd_<name>(ib_cli *cli, int argc, char **argv)`
 * and its option table `const cli_option cli_opts_<name>[]` (the single
 * source of its parsing, --help, man page and completion), plus one line
 * here and its file in meson.build.
 *
 * IB_COMMAND(name, flags, "operands", "summary")   flags: 0 or CLI_NO_INTERSPERSE
 */
IB_COMMAND(build, 0, "PATH", "Build an image from a Dockerfile (pulling missing base images)")
IB_COMMAND(run, CLI_NO_INTERSPERSE, "IMAGE [COMMAND] [ARG...]", "Create and run a new container from an image")
IB_COMMAND(exec, CLI_NO_INTERSPERSE, "CONTAINER COMMAND [ARG...]", "Run a command in an existing container (its changes persist)")
IB_COMMAND(ps, 0, "", "List containers")
IB_COMMAND(rm, 0, "CONTAINER [CONTAINER...]", "Remove containers")
IB_COMMAND(logs, 0, "CONTAINER", "Fetch the logs of a detached container")
IB_COMMAND(wait, 0, "CONTAINER [CONTAINER...]", "Block until containers stop, then print their exit codes")
IB_COMMAND(stop, 0, "CONTAINER [CONTAINER...]", "Stop running detached containers")
IB_COMMAND(kill, 0, "CONTAINER [CONTAINER...]", "Kill running detached containers")
IB_COMMAND(volume, CLI_NO_INTERSPERSE, "create NAME | ls [-q] | rm NAME... | inspect NAME", "Manage named volumes")
IB_COMMAND(commit, 0, "CONTAINER [REPOSITORY[:TAG]]", "Create a new image from a container's changes")
IB_COMMAND(images, 0, "[REPOSITORY[:TAG]]", "List images")
IB_COMMAND(inspect, 0, "NAME [NAME...]", "Return low-level information on images as JSON")
IB_COMMAND(history, 0, "IMAGE", "Show the history of an image")
IB_COMMAND(tag, 0, "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
IB_COMMAND(rmi, 0, "IMAGE [IMAGE...]", "Remove images")
IB_COMMAND(import, 0, "FILE|- [REPOSITORY[:TAG]]", "Import the contents from a tarball to create a filesystem image")
IB_COMMAND(save, 0, "IMAGE [IMAGE...]", "Save images to an OCI layout, OCI archive or docker-archive (stdout by default)")
IB_COMMAND(load, 0, "", "Load images from an OCI layout, OCI archive or docker-archive (stdin by default)")
IB_COMMAND(push, 0, "NAME[:TAG] [DEST]", "Upload an image to a registry")
IB_COMMAND(pull, 0, "NAME[:TAG|@DIGEST]", "Download an image from a registry")
IB_COMMAND(login, 0, "[SERVER]", "Log in to a registry (Docker's config.json)")
IB_COMMAND(logout, 0, "[SERVER]", "Log out from a registry")
IB_COMMAND(prune, 0, "", "Remove untagged images, every blob nothing references, unpacked layers no image uses and what killed processes left")
IB_COMMAND(binfmt, 0, "[PLATFORM...]", "Register qemu-user-static emulators with binfmt_misc (F flag) for RUN of other platforms (default: arm64, arm/v7, ppc64le, s390x, riscv64)")
IB_COMMAND(fsck, 0, "", "Verify every blob and reference of the store")
IB_COMMAND(init, 0, "[DIR]", "Write a Dockerfile, .dockerignore and compose.yaml for a project, asking on a terminal what it cannot detect (as docker init)")
