"""The differential tester: a generator of valid programs, an oracle, a reducer, a campaign."""
