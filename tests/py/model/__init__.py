"""Model-based visibility test: random operations over a small helpdesk, and after each one the
check that nobody received, on any channel, what REST would refuse them at that moment.

- `world`: one server, the identities (three customers, two agents, an admin), each with a
  python-socketio client and a signed webhook receiver; what the model knows of tickets,
  comments, articles and attachments; waiting for quiescence.
- `ops`: the operations, chosen at random with weights.
- `oracle`: REST as the judge of what each identity may read, and the invariant itself.
"""
