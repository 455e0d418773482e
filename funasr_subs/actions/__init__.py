"""Built-in plugin actions, declared as ``funasr_subs.plugins`` entry points exactly like third-party plugins."""
