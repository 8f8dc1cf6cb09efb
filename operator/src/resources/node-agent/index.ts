export { DEFAULT_CONFIG_PATH, HOST_CONFIG_MOUNT, nodeAgentConfig, nodeAgentName, renderNodeAgent, type NodeAgentInput } from './render.js';
