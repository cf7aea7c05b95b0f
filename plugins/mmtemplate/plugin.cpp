// mmtemplate: mm-templates as a criu plugin (see Documentation/mm-templates.md).
//   criu convert -D DIR --mm-template NAME [--mem-pool dram|dax] [--dax-device PATH]
//   criu mm-template list | delete NAME | hold NAME | socket NAME | stop NAME
//   criu restore -D DIR --mm-template NAME -d ...   (RESTORE_DELEGATE)
//   RPC RESTORE with mm_template through criu service (RPC_HAND_OVER)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

#include <string>
#include <utility>

#include "criu-plugin.h"
#include "holder.h"
#include "pool.h"

namespace
{

using namespace mmt;

int report(const Status &st)
{
	if (st)
		return 0;
	criu_log(1, "%s\n", st.error().c_str());
	return -EINVAL;
}

int do_convert()
{
	const char *name = criu_get_option("mm-template");
	if (!name)
		return report(fail("convert needs --mm-template NAME"));
	auto pool = Pool::from_options();
	if (!pool)
		return report(fail(pool.error()));
	const char *dir = criu_get_option("images-dir");
	return report(convert(*pool, name, dir ? dir : "."));
}

int do_mm_template(int argc, char **argv)
{
	std::string sub = argc > 1 ? argv[1] : "";
	auto pool = Pool::from_options();
	if (!pool)
		return report(fail(pool.error()));
	if (sub == "list" && argc == 2)
		return report(list(*pool));
	if (argc != 3)
		return report(fail("usage: criu mm-template list | delete NAME | hold NAME | socket NAME | stop NAME"));
	std::string name = argv[2];
	if (auto st = check_name(name); !st)
		return report(st);
	if (sub == "delete")
		return report(remove_template(*pool, name));
	if (sub == "hold")
		return report(run_holder(*pool, name));
	if (sub == "socket") {
		auto path = template_socket(*pool, name);
		if (!path)
			return report(fail(path.error()));
		printf("%s\n", path->c_str());
		return 0;
	}
	if (sub == "stop") {
		stop_holder(*pool, name);
		return 0;
	}
	return report(fail(fmt("unknown mm-template command '%s'", sub.c_str())));
}

int command(const char *cmd, int argc, char **argv)
{
	std::string c = cmd;
	if (c == "convert")
		return do_convert();
	if (c == "mm-template")
		return do_mm_template(argc, argv);
	return -ENOTSUP;
}

// A hook's failure: its message in err.
int fail_into(char *err, size_t errlen, const std::string &msg)
{
	snprintf(err, errlen, "%s", msg.c_str());
	return -EINVAL;
}

// The pool the options name, and the index of template name in it.
Result<std::pair<Pool, Index>> template_of(const char *name)
{
	auto pool = Pool::from_options();
	if (!pool)
		return Result<std::pair<Pool, Index>>::fail(pool.error());
	auto ix = read_index(*pool, name);
	if (!ix)
		return Result<std::pair<Pool, Index>>::fail(ix.error());
	return std::pair(std::move(*pool), std::move(*ix));
}

int restore_delegate(int argc, char **argv, int *pid, char *err, size_t errlen)
{
	const char *name = criu_get_option("mm-template");
	if (!name)
		return -ENOTSUP;
	auto t = template_of(name);
	if (!t)
		return fail_into(err, errlen, t.error());
	auto &[pool, ix] = *t;
	const char *dir = criu_get_option("images-dir");
	if (auto st = check_images(ix, dir ? dir : "."); !st)
		return fail_into(err, errlen, st.error());
	auto r = restore_via_holder(pool, ix, argc, argv);
	if (!r)
		return fail_into(err, errlen, r.error());
	*pid = *r;
	return 0;
}

int rpc_hand_over(const char *name, int conn_fd, const void *req, size_t len, char *err, size_t errlen)
{
	auto t = template_of(name);
	if (!t)
		return fail_into(err, errlen, t.error());
	auto st = hand_over_to_holder(t->first, t->second, conn_fd, std::string(static_cast<const char *>(req), len));
	return st ? 0 : fail_into(err, errlen, st.error());
}

int init(int)
{
	return 0;
}

void fini(int, int) {}

}  // namespace

extern "C" {
cr_plugin_desc_t CR_PLUGIN_DESC = {
    .name = "mmtemplate",
    .init = init,
    .exit = fini,
    .version = CRIU_PLUGIN_VERSION,
    .max_hooks = CR_PLUGIN_HOOK__MAX,
    .hooks = {},
};
}

__attribute__((constructor)) static void fill_hooks()
{
	CR_PLUGIN_DESC.hooks[CR_PLUGIN_HOOK__COMMAND] = reinterpret_cast<void *>(command);
	CR_PLUGIN_DESC.hooks[CR_PLUGIN_HOOK__RESTORE_DELEGATE] = reinterpret_cast<void *>(restore_delegate);
	CR_PLUGIN_DESC.hooks[CR_PLUGIN_HOOK__RPC_HAND_OVER] = reinterpret_cast<void *>(rpc_hand_over);
}
