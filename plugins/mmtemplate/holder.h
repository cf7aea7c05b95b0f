// The template holder: `criu mm-template hold NAME`, a criu process whose
// address space holds the template's memory (criu_template_hold). It
// listens on a node-local unix socket; a worker forked ahead (the spare)
// accepts a restore request there itself and runs the restore
// (criu_template_restore), so the restored task is created by a process
// that has the memory already and inherits it copy-on-write, with
// anonymous semantics, as fork() gives.
// The holder is a child subreaper: restored tasks end up its children and
// it reaps them. It serves one generation of the template: a request for
// another gets "stale", and the holder ends so that a new one takes over.
#pragma once

#include "common.h"
#include "pool.h"

namespace mmt
{

Status run_holder(const Pool &p, const std::string &name);
// In `criu restore --mm-template`: has the template's holder (started if
// needed) restore argv; returns the restored root's PID.
Result<int> restore_via_holder(const Pool &p, const Index &ix, int argc, char **argv);
// In `criu service`: hands the RPC connection conn_fd, whose request req
// (packed) restores from the template, to a worker of its holder (started
// if needed), which serves it from there on; returns once that worker
// ended.
Status hand_over_to_holder(const Pool &p, const Index &ix, int conn_fd, const std::string &req);
void stop_holder(const Pool &p, const std::string &name);
// The template's own CRIU RPC socket (its holder started if needed): a
// RESTORE sent there is served by the holder's spare itself.
Result<std::string> template_socket(const Pool &p, const std::string &name);
// The PID of the running holder of name, or 0.
int holder_pid(const Pool &p, const std::string &name);

}  // namespace mmt
