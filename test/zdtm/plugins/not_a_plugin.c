/* A shared object without CR_PLUGIN_DESC: criu must refuse it clearly. */
int zdtm_not_a_plugin(void)
{
	return 42;
}
