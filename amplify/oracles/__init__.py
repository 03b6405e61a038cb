"""The oracles, found by name (`--oracle=NAME`): the built-in ones below are entry points of
amplify's pyproject.toml, a plug-in's are its own (`amplify.registry`).

- `scripted`: the task's own decomposition (exact, batch first, jits with H^A).
- `noisy`: the scripted H slipping with probability `--oracle.noise_rate`.
- `sloppy`: the scripted H slipping systematically on large questions (the Goodhart experiment's
  flaw, `--oracle.from_difficulty`).
- `callable`: any Python function answering one rendered question with `ask` / `lookup`
  (`--oracle.fn=module:function`): the way to put a language model or a service in H's place.
  It runs in a worker process of its own (`amplify.oracles.channel`), as a plug-in's
  per-question oracle does; batch-first oracles are trusted code, like a task, and run in
  process, as do the built-in interactive, replay and learned.
- `interactive`: a person at the terminal (`amplify.oracles.interactive`).
- `web`: many people at once, each in their browser (`amplify.oracles.web`).
- `replay`: answers only from the answer store (`--oracle_store`); IDK where it has none.
- `learned`: H', a network imitating the scripted H's steps, answering most questions while the
  real H answers a share adapted to H''s held-out agreement (`amplify.oracles.learned`).
"""
