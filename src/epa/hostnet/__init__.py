"""Host networking through netlink (pyroute2): configuring SR-IOV VFs on their PF. The only package
that imports pyroute2."""
