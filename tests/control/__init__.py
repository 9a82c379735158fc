"""Tests of acting on stored workflows: operations, recovery, failover (autodurable._control)."""
