"""A plugin whose import fails, as one with a missing dependency does."""

import funasr_subs_testplugin_missing_dependency  # noqa: F401
