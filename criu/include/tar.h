// The tmpfs images (tmpfs-dev-DEV.tar.gz.img) are gzip'ed GNU tar archives,
// as CRIU writes them. Most are small and plain (a container's /dev,
// /dev/shm, /run): those are extracted here, in criu, which spares a tar and
// a gzip process (about 4 ms each restore). Plain means: at most 4 MiB once
// inflated, and only directories, regular files, symlinks, device nodes and
// FIFOs under relative names without "..". Anything else (hard links, long
// names, pax headers for xattrs, sparse files) is left to tar(1).
#pragma once

#include <string>

#include "util.h"

namespace criu
{

// Extracts the archive in gz into the (fresh, empty) directory dir_fd, as
// `tar --extract --preserve-permissions --numeric-owner` would: the
// entries with their modes, owners and modification times, "./" setting
// dir_fd's own. false: the archive is not plain and nothing was written; an
// error: it could not be extracted (what was written is left for the
// caller to discard).
Result<bool> extract_plain_tar_gz(const std::string &gz, int dir_fd, const std::string &what);

}  // namespace criu
