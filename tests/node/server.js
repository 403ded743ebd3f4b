// The seed's own control server: the protocol document's "Server Example
// Code" (cloud-control API), as it gives it, for tests/e2e/test_control_node.py.
// Run: `node server.js` in this folder after `npm ci` (port 9000; PORT=N for another).
//
// package.json pins ws 7 (its last patch): the document's
// `WebSocket.Server` through an ES `import WebSocket from 'ws'` exists only
// there; ws 8's ES module gives the client class alone as its default
// ("WebSocket.Server is not a constructor").
//
// Changed from the document, and why:
// - host '127.0.0.1': the document's server listens on every interface;
//   a test listens on loopback only.
// - the port is $PORT (default 9000, the document's): a test asks for 0,
//   any free port, so it never collides with another server on 9000, and
//   reads the port from the 'listening on' line (which also says when the
//   server is ready for the agent).
// - 'received' lines carry each message exactly as it came: the document's
//   console.log(json.body) prints Node's notation for an object, not JSON.
import WebSocket from 'ws'

const wss = new WebSocket.Server({ host: '127.0.0.1', port: Number(process.env.PORT || 9000) })

wss.on('listening', () => {
  console.log('listening on ' + wss.address().port)
})

wss.on('connection', (ws) => {
  ws.on('message', (data) => {
    console.log('received ' + data)
    const json = JSON.parse(data)
    if (json.error) {
      console.log('Error:' + json.error)
    } else {
      console.log(json.body)
    }
  })

  setInterval(() => {
    ws.ping(() => {})
  }, 5000)

  ws.send(
    JSON.stringify({
      type: 'app/state',
    }),
  )
})
