# modes git cannot hold: the parents --parents creates take their sources'
chmod 0700 foo1 foo1/foo2
chmod 0600 foo1/foo2/bar
