#include "plugin.h"

#include <stdarg.h>

#include <algorithm>

#include "options.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>

#include <algorithm>
#include <vector>

#include "log.h"

namespace criu::plugins
{

namespace
{

struct Loaded {
	std::string path;
	void *handle;
	cr_plugin_desc_t *desc;
};

std::vector<Loaded> g_plugins;
int g_stage = -1;
int g_image_dir = -1;
const Options *g_options = nullptr;

void *hook(const Loaded &p, int h)
{
	return (unsigned)h < p.desc->max_hooks ? p.desc->hooks[h] : nullptr;
}

}  // namespace

Status load(const std::string &dir, bool explicit_dir, int stage)
{
	DIR *d = opendir(dir.c_str());
	if (!d) {
		if (!explicit_dir && errno == ENOENT)
			return {};
		return sys_error("can't open the plugin directory %s", dir.c_str());
	}
	std::vector<std::string> names;
	while (dirent *e = readdir(d))
		if (std::string_view(e->d_name).ends_with(".so"))
			names.emplace_back(e->d_name);
	closedir(d);
	std::sort(names.begin(), names.end());
	g_stage = stage;
	for (auto &n : names) {
		std::string path = dir + "/" + n;
		void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
		if (!h)
			return Error{strfmt("can't load plugin %s: %s", path.c_str(), dlerror())};
		auto *desc = static_cast<cr_plugin_desc_t *>(dlsym(h, "CR_PLUGIN_DESC"));
		if (!desc || !desc->name) {
			dlclose(h);
			return Error{strfmt("%s is not a criu plugin (no CR_PLUGIN_DESC)", path.c_str())};
		}
		if ((desc->version >> 16) != CRIU_PLUGIN_VERSION_MAJOR) {
			dlclose(h);
			return Error{strfmt("plugin %s (%s) has ABI version %u.%u, this criu has %u.%u", desc->name,
					    path.c_str(), desc->version >> 16, (desc->version >> 8) & 0xff,
					    CRIU_PLUGIN_VERSION_MAJOR, CRIU_PLUGIN_VERSION_MINOR)};
		}
		if (desc->init && desc->init(stage) != 0) {
			dlclose(h);
			return Error{strfmt("plugin %s failed to initialise", desc->name)};
		}
		pr_info("Loaded plugin %s from %s\n", desc->name, path.c_str());
		g_plugins.push_back({path, h, desc});
	}
	return {};
}

void unload(int ret)
{
	for (auto it = g_plugins.rbegin(); it != g_plugins.rend(); ++it) {
		if (it->desc->exit)
			it->desc->exit(g_stage, ret);
		dlclose(it->handle);
	}
	g_plugins.clear();
}

int run_command(const char *cmd, int argc, char **argv)
{
	for (auto &p : g_plugins) {
		auto *fn = reinterpret_cast<cr_plugin_command_t *>(hook(p, CR_PLUGIN_HOOK__COMMAND));
		if (!fn)
			continue;
		int r = fn(cmd, argc, argv);
		if (r == -ENOTSUP)
			continue;
		if (r < 0)
			pr_err("plugin %s: %s failed: %s\n", p.desc->name, cmd, strerror(-r));
		return r == 0 ? 0 : 1;
	}
	return -1;
}

Result<pid_t> restore_delegate(const std::vector<std::string> &argv, bool *taken)
{
	std::vector<char *> av;
	for (auto &a : argv)
		av.push_back(const_cast<char *>(a.c_str()));
	av.push_back(nullptr);
	*taken = false;
	for (auto &p : g_plugins) {
		auto *fn = reinterpret_cast<cr_plugin_restore_delegate_t *>(hook(p, CR_PLUGIN_HOOK__RESTORE_DELEGATE));
		if (!fn)
			continue;
		int pid = 0;
		char err[1024] = "";
		int r = fn((int)argv.size(), av.data(), &pid, err, sizeof(err));
		if (r == -ENOTSUP)
			continue;
		*taken = true;
		if (r < 0)
			return Error{strfmt("plugin %s: %s", p.desc->name, err[0] ? err : strerror(-r))};
		return pid;
	}
	return 0;
}

Result<bool> rpc_hand_over(const std::string &name, int conn_fd, const std::string &req)
{
	for (auto &p : g_plugins) {
		auto *fn = reinterpret_cast<cr_plugin_rpc_hand_over_t *>(hook(p, CR_PLUGIN_HOOK__RPC_HAND_OVER));
		if (!fn)
			continue;
		char err[1024] = "";
		int r = fn(name.c_str(), conn_fd, req.data(), req.size(), err, sizeof(err));
		if (r == -ENOTSUP)
			continue;
		if (r < 0)
			return Error{strfmt("plugin %s: %s", p.desc->name, err[0] ? err : strerror(-r))};
		return true;
	}
	return false;
}

Status resume_devices_late(int pid)
{
	for (auto &p : g_plugins) {
		auto *fn =
		    reinterpret_cast<cr_plugin_resume_devices_late_t *>(hook(p, CR_PLUGIN_HOOK__RESUME_DEVICES_LATE));
		if (!fn)
			continue;
		int r = fn(pid);
		if (r < 0 && r != -ENOTSUP)
			return Error{strfmt("plugin %s: RESUME_DEVICES_LATE of PID %d failed: %s", p.desc->name, pid,
					    strerror(-r))};
	}
	return {};
}

void set_image_dir(int fd)
{
	g_image_dir = fd;
}

void set_options(const Options *o)
{
	g_options = o;
}

const Options *current_options()
{
	return g_options;
}

}  // namespace criu::plugins

extern "C" __attribute__((visibility("default"))) int criu_get_image_dir(void)
{
	return criu::plugins::g_image_dir;
}

extern "C" __attribute__((visibility("default"))) const char *criu_get_option(const char *name)
{
	const criu::Options *o = criu::plugins::g_options;
	if (!o || !name)
		return nullptr;
	const std::pair<const char *, const std::string *> opts[] = {
	    {"images-dir", &o->images_dir}, {"mm-template", &o->mm_template}, {"mem-pool", &o->mem_pool},
	    {"dax-device", &o->dax_device}, {"libdir", &o->libdir},	      {"log-file", &o->log_file},
	    {"work-dir", &o->work_dir},
	};
	for (auto &[n, v] : opts)
		if (!strcmp(n, name))
			return v->empty() ? nullptr : v->c_str();
	return nullptr;
}

extern "C" __attribute__((visibility("default"))) void criu_linger(int fd, int timeout_ms)
{
	criu::linger(fd, timeout_ms);
}

extern "C" __attribute__((visibility("default"))) void criu_log(int level, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (level <= criu::log::kError)
		pr_err("%s", buf);
	else if (level == criu::log::kWarn)
		pr_warn("%s", buf);
	else
		criu::log::print((criu::log::Level)std::min(level, (int)criu::log::kDebug), "%s", buf);
}
