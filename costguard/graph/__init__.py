"""The graph: builder and routers."""
