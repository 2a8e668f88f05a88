"""`nslab replay TUTORIAL`: a tutorial's commands, step by step, in a sandbox of their own.

- tutorial.py: the commands a tutorial shows (fences, prompts, leading commands)
- kinds.py: what each command is (skipped, a shell, a server, a reachability check)
- stage.py: the private world they run in, each command bounded
- verdict.py: nslab's verdict on a reachability command, on a copy of the stage
- runner.py: the replay and its findings; show.py: as `nslab replay` prints it
"""
