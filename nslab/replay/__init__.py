"""`nslab replay TUTORIAL`: a tutorial's commands, step by step, in a sandbox of their own.

- tutorial.py: the commands a tutorial shows (fences, prompts, leading commands) and the output beside them
- prose.py: commands inside sentences, and the words that say a probe fails; grammar.py: where a command ends
- kinds.py: what each command is (skipped, a shell, a server, a reachability check)
- stage.py: the private world they run in, each command bounded
- given.py: what the tutorial's machine already had (the stand-ins, its containers, the values it printed)
- standin.py: `docker` and `kind`, played inside the stage
- verdict.py: nslab's verdict on a reachability command, on a copy of the stage
- compare.py: the output a tutorial shows against the output printed
- runner.py: the replay and its findings; show.py: as `nslab replay` prints it
- draft.py: a draft exercise from the replay (`--exercise DIR`)
"""
