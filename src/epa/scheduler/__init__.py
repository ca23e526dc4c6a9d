"""The scheduler: which host, which NUMA cells and which devices a server gets (pure: no I/O).

``request`` turns a flavor and ports into device requests; ``host_state`` is the scheduler's view of
one host; ``fit`` places a request on one host (NUMA policies, PF/VF rules) or says why not;
``weigh`` ranks placements; ``index`` pre-filters thousands of hosts with array arithmetic;
``scheduler`` puts them together and explains its choices."""
