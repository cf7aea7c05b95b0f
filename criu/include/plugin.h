// The plugin loader: finds plugins (criu-plugin.h) in the plugin
// directory, checks and initialises them, and runs their hooks.
#pragma once

#include <string>
#include <vector>

#include "criu-plugin.h"
#include "util.h"

namespace criu
{
struct Options;
}

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
// RESTORE_DELEGATE: a plugin restored the task elsewhere (returns its PID),
// or none took it (returns 0 and sets *taken = false).
Result<pid_t> restore_delegate(const std::vector<std::string> &argv, bool *taken);
// RPC_HAND_OVER: a plugin took the connection conn_fd, whose request req
// (packed) restores from template name, and its new server ended (returns
// true), or none handles templates (returns false).
Result<bool> rpc_hand_over(const std::string &name, int conn_fd, const std::string &req);
// RESUME_DEVICES_LATE after a restored task runs.
Status resume_devices_late(int pid);

void set_image_dir(int fd);
// What criu_get_option() answers.
void set_options(const Options *o);
// The command's options (nullptr when there are none).
const Options *current_options();

}  // namespace criu::plugins
