// A C++ plugin for the plugin ABI tests: it records every call it gets
// into the file named by $ZDTM_PLUGIN_OUT (one line each).
//   criu zdtm-hello ARGS...   -> 0
//   criu zdtm-fail            -> -EIO
//   any other command         -> -ENOTSUP (not ours)
//   RESUME_DEVICES_LATE       -> records the PID and the image dir fd
// Built with -DZDTM_BAD_VERSION it claims another ABI major version.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <string>

#include "criu-plugin.h"

namespace {

void record(const std::string &line)
{
	const char *path = getenv("ZDTM_PLUGIN_OUT");
	if (!path)
		return;
	if (FILE *f = fopen(path, "a")) {
		fprintf(f, "%s\n", line.c_str());
		fclose(f);
	}
}

int init(int stage)
{
	record("init " + std::to_string(stage));
	return 0;
}

void fini(int stage, int ret)
{
	record("exit " + std::to_string(stage) + " " + std::to_string(ret));
}

int command(const char *cmd, int argc, char **argv)
{
	std::string c = cmd;
	if (c == "zdtm-fail")
		return -EIO;
	if (c != "zdtm-hello")
		return -ENOTSUP;
	std::string line = "hello";
	for (int i = 0; i < argc; i++)
		line += std::string(" ") + argv[i];
	record(line);
	return 0;
}

int resume(int pid)
{
	record("resume " + std::to_string(pid) + " imgdir " + (criu_get_image_dir() >= 0 ? "ok" : "missing"));
	return 0;
}

}  // namespace

#ifdef ZDTM_BAD_VERSION
#define ZDTM_VERSION CRIU_PLUGIN_GEN_VERSION(CRIU_PLUGIN_VERSION_MAJOR + 1, 0, 0)
#else
#define ZDTM_VERSION CRIU_PLUGIN_VERSION
#endif

// C linkage comes from the declaration in criu-plugin.h
cr_plugin_desc_t CR_PLUGIN_DESC = {
	"zdtm-test", init, fini, ZDTM_VERSION, CR_PLUGIN_HOOK__MAX, {},
};

namespace {
struct Register {
	Register()
	{
		CR_PLUGIN_DESC.hooks[CR_PLUGIN_HOOK__COMMAND] = reinterpret_cast<void *>(command);
		CR_PLUGIN_DESC.hooks[CR_PLUGIN_HOOK__RESUME_DEVICES_LATE] = reinterpret_cast<void *>(resume);
	}
} reg;
}  // namespace
