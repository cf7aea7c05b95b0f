// The plugin loader: finds plugins (criu-plugin.h) in the plugin
// directory, checks and initialises them, and runs their hooks.
#pragma once

#include <string>

#include "criu-plugin.h"
#include "util.h"

namespace criu::plugins
{

// Loads every *.so of dir (a missing default directory is no error) and
// calls init(stage). An explicitly given dir must exist.
Status load(const std::string &dir, bool explicit_dir, int stage);
// Calls exit(stage, ret) of every loaded plugin.
void unload(int ret);

// Runs `criu cmd ...` through the plugins. Returns the exit code, or -1 if
// no plugin handles cmd.
int run_command(const char *cmd, int argc, char **argv);
// RESUME_DEVICES_LATE after a restored task runs.
Status resume_devices_late(int pid);

void set_image_dir(int fd);

}  // namespace criu::plugins
