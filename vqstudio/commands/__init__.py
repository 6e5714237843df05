"""The bodies of the larger ``vqstudio`` subcommands, one module each; ``vqstudio/cli.py`` builds
the parser and hands each parsed command to its ``cmd_*`` function here. A new subcommand that
belongs to one layer may instead keep ``add_arguments(parser)`` and ``run(args)`` in that layer
(as ``vqstudio/diagnose/command.py`` does)."""
