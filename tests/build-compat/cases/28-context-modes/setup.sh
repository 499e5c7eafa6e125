# Modes git cannot keep, owners and a hardlink pair in the context.
mkdir -p ctx/locked ctx/open
echo private > ctx/private && chmod 600 ctx/private
echo setuid > ctx/setuid && chmod 4755 ctx/setuid
echo odd > ctx/odd && chmod 0513 ctx/odd
echo in > ctx/locked/in && chmod 700 ctx/locked
chmod 1777 ctx/open
echo owned > ctx/owned && chown 1234:5678 ctx/owned
echo same > ctx/hard1 && ln ctx/hard1 ctx/hard2
mkdir -p ctx/empty-dir && chmod 750 ctx/empty-dir
