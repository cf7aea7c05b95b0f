// The core's part of mm-templates: holding a dump's memory in a process
// (a template holder) and restoring from a child of that process, so that
// the restored task inherits the memory copy-on-write, as fork() gives it:
// anonymous memory stays anonymous. The pool, the conversion of a dump and
// the holder's lifecycle are the mmtemplate plugin's (plugins/mmtemplate);
// it reaches this module through the C functions declared in
// criu-plugin.h (criu_template_hold, criu_template_restore).
#pragma once

#include <vector>

#include "image.h"
#include "options.h"
#include "util.h"

namespace criu
{

// Maps the root task's private VMAs that have pages (anonymous or file
// backed) at their dumped addresses in this process and fills them from
// the pages images in pages. With huge, the anonymous ones are collapsed
// into huge pages where possible (so that a fork copies page tables per
// 2 MiB: a template's memory is shared by many instances, for one the
// extra memory is not worth it). A VMA whose range is taken in this
// process fails with *collision set: the holder re-executes itself to get
// another layout.
Result<std::vector<HeldRange>> hold_template(const ImageDir &images, const ImageDir &pages, bool huge, bool *collision);

}  // namespace criu
